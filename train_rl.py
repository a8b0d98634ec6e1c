"""
On-policy fine-tuning against a reward model with a KL penalty to the reference policy: the second stage of
the online route. Maximises E[RM(x, y)] - beta * KL(pi || pi_ref).
  --algo rloo       : REINFORCE with a leave-one-out baseline over k samples per prompt; the KL enters the
                      reward at the sequence level, R = RM(x, y) - beta * sum_t log(pi / pi_ref)(y_t).
  --algo online_dpo : the paper's online DPO: k samples per prompt from the sampler (the init policy), the RM's
                      best and worst become a pair, trained with the DPO loss and beta of offline DPO.
                      --rounds 1 is the paper's single batch; more rounds resample from the current policy.
  --algo ppo        : PPO as in OpenAI's lm-human-preferences: a value head on the policy's own trunk, the KL
                      penalty at every token and the RM's score at the last, GAE advantages (whitened over the
                      batch), the clipped policy and value losses, several epochs of minibatches per sampled batch.

  python train_rl.py --algo rloo --reward out/rm --init out/sft --out_dir out/rloo
  python train_rl.py --algo online_dpo --reward out/rm --init out/dpo --ref out/sft --out_dir out/odpo
  python train_rl.py --algo ppo --reward out/rm --init out/sft --out_dir out/ppo
  torchrun --nproc_per_node 2 train_rl.py ...  (data parallel: each rank samples its share of the prompts)

Completions that reach the length limit without EOS are scored as they stand (the RM reads their last token;
no penalty); the EOS rate is logged so a policy that learns to ramble shows up.
"""
import argparse
import math
import time
from dataclasses import asdict

import torch
from tqdm import tqdm

import model as M

ALGOS = {  # each algorithm's defaults, and the fewest samples per prompt it can learn from
    'rloo': dict(k=4, lr=3e-4, batch_size=16, min_k=2),  # min_k: the leave-one-out baseline needs another sample
    'online_dpo': dict(k=8, lr=1e-4, batch_size=32, min_k=2),  # lr: offline DPO's; min_k: a best and a worst
    'ppo': dict(k=1, lr=1e-4, batch_size=64, min_k=1),  # RLOO's 64 samples a step; the value head is the baseline
}


def defaults(key):
    """For --help: each algorithm's default of a flag."""
    return ', '.join(f"{algo} {d[key]:g}" for algo, d in ALGOS.items())


p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--algo', choices=list(ALGOS), required=True)
M.add_common_args(p)
p.add_argument('--reward', required=True,
               help="a reward checkpoint from train_rm.py (global or local), or a dpo policy (its implicit reward)")
p.add_argument('--init', default='out/sft', help='the policy to start from (sft or dpo checkpoint)')
p.add_argument('--ref', default=None, help='the reference policy (default: --init if it is sft, else its ref)')
p.add_argument('--beta', type=float, default=0.1, help='KL weight (online_dpo: the DPO beta)')
p.add_argument('--k', type=int, default=None, help=f'samples per prompt ({defaults("k")})')
p.add_argument('--temperature', type=float, default=1.0, help='for sampling and for the log-probs alike')
p.add_argument('--lr', type=float, default=None, help=f'peak learning rate ({defaults("lr")})')
p.add_argument('--batch_size', type=int, default=None,
               help=f'prompts per step, or pairs for online_dpo ({defaults("batch_size")})')
p.add_argument('--eval_interval', type=int, default=None, help='steps between log lines and checkpoints')
g = p.add_argument_group('online_dpo')
g.add_argument('--n_prompts', type=int, default=2000, help='training prompts sampled per round')
g.add_argument('--rounds', type=int, default=1, help='1 = the paper\'s single batch; >1 resamples each round')
g.add_argument('--epochs', type=float, default=1.0, help='passes over each round\'s pairs')
g = p.add_argument_group('ppo (a step: one sampled batch, then --ppo_epochs x --minibatches optimiser steps on it)')
g.add_argument('--ppo_epochs', type=int, default=4, help='passes over each sampled batch')
g.add_argument('--minibatches', type=int, default=4, help='minibatches per pass, an optimiser step each')
g.add_argument('--clip', type=float, default=0.2, help='the ratio pi / pi_sampling is clipped to 1 -+ this')
g.add_argument('--vf_clip', type=float, default=0.2, help='a value moves at most this far from the sampling one')
g.add_argument('--vf_coef', type=float, default=0.1, help='weight of the value loss')
g.add_argument('--gamma', type=float, default=1.0, help='GAE discount per token')
g.add_argument('--lam', type=float, default=0.95, help='GAE lambda: 1 = Monte Carlo returns, 0 = one-step TD')
g.add_argument('--no_whiten', action='store_true',
               help='leave the advantages raw (default: whitened over the batch, a factor Xu et al. 2024 find matters)')
g.add_argument('--ref_ema', type=float, default=0.0,
               help="each step the reference moves this share of the way to the policy (Xu et al. 2024's moving "
                    "reference; the logged KL is then to it, eval.py's stays to --ref); 0 = frozen")
M.add_experiment_args(p)


def parse_args(argv=None):
    """The flags with --algo's defaults filled in, and every check that needs no file (the sweeps run this alone
    to check a command's flags before any job starts)."""
    args = p.parse_args(argv)
    algo = ALGOS[args.algo]
    args.out_dir = args.out_dir or f'out/{args.algo}'
    args.k = args.k or algo['k']
    args.lr = args.lr or algo['lr']
    args.batch_size = args.batch_size or algo['batch_size']
    if args.beta <= 0:
        raise ValueError(f"--beta must be > 0, got {args.beta}")
    if args.k < algo['min_k']:
        raise ValueError(f"--k must be >= {algo['min_k']} for {args.algo}, got {args.k}")
    if args.temperature <= 0:
        raise ValueError(f"--temperature must be > 0, got {args.temperature}")
    if args.algo == 'ppo':
        if args.ppo_epochs < 1 or not 1 <= args.minibatches <= args.batch_size * args.k:
            raise ValueError(f"--ppo_epochs {args.ppo_epochs} and --minibatches {args.minibatches}: need >= 1 each, "
                             f"and no more minibatches than the {args.batch_size * args.k} samples of a step")
        if not (args.clip > 0 and args.vf_clip > 0 and args.vf_coef >= 0):
            raise ValueError(f"--clip {args.clip} and --vf_clip {args.vf_clip} must be > 0, "
                             f"--vf_coef {args.vf_coef} >= 0")
        if not (0 <= args.gamma <= 1 and 0 <= args.lam <= 1 and 0 <= args.ref_ema <= 1):
            raise ValueError(f"--gamma {args.gamma}, --lam {args.lam} and --ref_ema {args.ref_ema} must lie in [0, 1]")
    M.check_experiment_args(args)
    return args


def main():
    args = parse_args()
    rank, world, device = M.ddp_setup(M.get_device(args.device))
    dt = torch.device(device).type
    if args.algo == 'online_dpo' and args.n_prompts < world:
        raise ValueError(f"--n_prompts {args.n_prompts} < {world} ranks: a rank would have no prompts to sample")
    M.seed_everything(args.seed)

    # ---- policy, reference, reward model: all must share a vocabulary
    init = M.load_checkpoint(args.init, stages=['sft', 'dpo', 'rl'])
    args.ref = args.ref or (args.init if init['stage'] == 'sft' else init['ref'])
    ref_ckpt = M.load_checkpoint(args.ref, stages=['sft'], vocab_size=init['vocab_size'])
    rm_ckpt, reward_of = M.load_reward(args.reward, device, init['vocab_size'])
    if rm_ckpt['stage'] == 'rm' and rm_ckpt.get('reward_mean') is None:
        raise ValueError(f"{args.reward} is an unfinished reward-model run")
    task = rm_ckpt['task']
    if init['task'] is not None and init['task'] != task:
        raise ValueError(f"{args.init} was trained for task {init['task']}, the reward model for {task}")
    policy = M.model_from_checkpoint(init, device)
    ref = M.frozen(M.model_from_checkpoint(ref_ckpt, device))
    eos = policy.cfg.vocab_size - 1
    prompts, _, _ = M.get_prompts(policy.cfg.vocab_size, 'train', task['prompt_len'], task['completion_len'])

    # subtracted from every score: RLOO's leave-one-out baseline and online DPO's ranks ignore a constant; the RM's
    # mean only makes the logged reward start near 0 (an implicit reward has none)
    reward_mean = rm_ckpt.get('reward_mean') or 0.0

    def sample(x, u):
        return M.sample(policy, x, task['completion_len'], eos, args.temperature, u=u.to(device))

    def sample_batch(g):
        """This rank's share of a step's batch, drawn from g: batch_size prompts, k samples of each (adjacent),
        and the weight of its mean loss (M.shard)."""
        idx = torch.randint(prompts.size(0), (args.batch_size,), generator=g)
        u = torch.rand(args.batch_size, args.k, task['completion_len'], generator=g)
        mine, w = M.shard(torch.arange(args.batch_size), rank, world)  # this rank's prompts
        x = prompts[idx[mine]].to(device).repeat_interleave(args.k, dim=0)
        y, m = sample(x, u[mine].flatten(0, 1))
        return x, y, m, w

    # ---- each algorithm's length, and what its optimiser trains: the policy, or PPO's policy with its value head
    trained = policy
    if args.algo == 'rloo':
        max_iters = args.max_iters or 150  # one fresh batch of samples per step
    elif args.algo == 'online_dpo':
        steps_per_round = math.ceil(args.epochs * math.ceil(args.n_prompts / args.batch_size))
        max_iters = args.max_iters or args.rounds * steps_per_round
    elif args.algo == 'ppo':
        max_iters = args.max_iters or 150  # one fresh batch of samples per step, as RLOO
        trained = M.PolicyValue(policy).to(device)
    else:
        raise ValueError(f"--algo {args.algo}: train_rl.py has no training step for it")
    args.eval_interval = args.eval_interval or max(1, min(50, max_iters // 10))
    if rank == 0:
        print(f"{args.algo}: policy {args.init}, reference {args.ref}, reward {args.reward} ({rm_ckpt.get('rm_type', 'implicit')}), "
              f"task {task['name']}, beta {args.beta}, k {args.k}, {max_iters} steps, device {device}")
    optimizer = trained.configure_optimizer(args.lr, weight_decay=0.0)
    ck, config = M.begin_run(args, policy, optimizer, 'rl', rank, world, max_iters=max_iters, device=device)
    step, pairs = (ck['step'], ck['pairs']) if ck else (0, None)
    if ck and args.algo == 'ppo':
        trained.value_head.load_state_dict(ck['value_head'])
        if args.ref_ema:
            ref.load_state_dict(ck['ref_model'])
    fwd = M.ddp_wrap(trained, world)

    def ppo_state():
        """What PPO keeps beside the policy, to resume from: its value head, and its reference if that moves."""
        if args.algo != 'ppo':
            return {}
        return {'value_head': trained.value_head.state_dict(),
                **({'ref_model': ref.state_dict()} if args.ref_ema else {})}

    def save():
        M.save_checkpoint(f'{args.out_dir}/ckpt.pt', model=policy.state_dict(), model_args=asdict(policy.cfg),
                          config=config, stage='rl', vocab_size=policy.cfg.vocab_size, task=task, step=step,
                          optimizer=optimizer.state_dict(), ref=args.ref, beta=args.beta, pairs=pairs, **ppo_state())

    # ---- the loop. Randomness is a function of (seed, step), so --resume replays the same prompts and samples,
    # and is drawn for the global batch: one uniform per sample and token, so a sample is the same on any rank.
    stop = M.StopFlag()
    bar = tqdm(total=max_iters, initial=step, disable=args.no_tqdm or rank > 0, desc=args.algo)
    t_sample = t_total = n_samples = 0.0
    while step < max_iters:
        t0 = time.time()
        lr = M.cosine_lr(step, max_iters, args.lr, warmup=10)
        # Dropout stays off throughout: the log-probs in the gradient must be those of the sampling policy.
        policy.eval()
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)  # the step's draws (online DPO: per round)
        if args.algo == 'rloo':
            ts = time.time()
            x, y, m, w = sample_batch(g)
            t_sample += time.time() - ts
            with M.autocast(dt):
                with torch.no_grad():
                    score = reward_of(x, y, m) - reward_mean
                    ref_lp = M.completion_logprobs(ref, x, y, m, args.temperature)
                logp = M.completion_logprobs(fwd, x, y, m, args.temperature)
                # REINFORCE on R = RM(x,y) - beta*log(pi/pi_ref)(y|x), baselined by the prompt's other k-1 samples
                loss, reward, kl = rloo_loss(logp, ref_lp, score, args.beta, args.k)
            stats = sample_stats(score, kl, reward, logp.detach(), y, m, eos)
            n_samples += args.batch_size * args.k
            M.train_step(policy, optimizer, loss * w, lr)
        elif args.algo == 'online_dpo':
            rnd, pos = divmod(step, steps_per_round)
            if pos == 0 and (pairs is None or pairs['round'] != rnd):
                ts = time.time()
                g = torch.Generator().manual_seed(args.seed * 7919 + rnd)  # the round's prompts and samples
                sel = torch.randperm(prompts.size(0), generator=g)[:args.n_prompts]
                u = torch.rand(sel.numel(), args.k, task['completion_len'], generator=g)  # one per sample and token
                pairs = online_pairs(policy, ref, reward_of, reward_mean, sample, prompts[sel].to(device), u,
                                     args.temperature, args.beta, rank, world)
                pairs['round'] = rnd
                t_sample += time.time() - ts
                n_samples += args.n_prompts * args.k
                bar.write(f"round {rnd}: {pairs['prompts'].size(0)} pairs; " + M.format_row(pairs['stats']))
            d = {k: v for k, v in pairs.items() if torch.is_tensor(v)}
            idx, w = M.shard(M.epoch_batch(d['prompts'].size(0), args.batch_size, pos, args.seed + rnd), rank, world)
            b = {k: v[idx].to(device) for k, v in d.items()}
            policy.train()
            with M.autocast(dt):
                lp_c, lp_r = M.pair_logprobs(fwd, b)  # log pi(y+|x), log pi(y-|x); the reference's are in b
                # DPO: -log sigmoid(beta*[(log pi - log pi_ref)(y+) - (log pi - log pi_ref)(y-)])
                loss, r_c, r_r = M.dpo_loss(lp_c, lp_r, b['ref_chosen'], b['ref_rejected'], args.beta)
                stats = M.dpo_stats(r_c, r_r)
            M.train_step(policy, optimizer, loss * w, lr)
        elif args.algo == 'ppo':
            ts = time.time()
            x, y, m, _ = sample_batch(g)
            t_sample += time.time() - ts
            with M.autocast(dt), torch.no_grad():
                score = reward_of(x, y, m) - reward_mean
                ref_lp = M.completion_logprobs(ref, x, y, m, args.temperature)
                logp, values = trained(x, y, m, args.temperature)
            # every rank's samples on every rank, so that the whitening and the minibatches are the global batch's
            b = M.all_cat({'x': x.cpu(), 'y': y.cpu(), 'm': m.cpu(), 'logp': logp.cpu(), 'values': values.cpu(),
                           'ref_lp': ref_lp.cpu(), 'score': score.cpu()}, world)
            rewards, kl = ppo_rewards(b['score'], b['logp'], b['ref_lp'], b['m'], args.beta)
            b['adv'], b['returns'] = gae(rewards, b['values'], b['m'], args.gamma, args.lam)
            if not args.no_whiten:
                b['adv'] = whiten(b['adv'], b['m'])
            stats = sample_stats(b['score'], kl, b['score'] - args.beta * kl, b['logp'], b['y'], b['m'], eos)
            loss, update_stats = ppo_update(fwd, trained, optimizer, b, g, lr, args, rank, world, device)
            stats.update(update_stats)
            w = 1.0  # the statistics are the global batch's already (ppo_update weights each rank's share)
            n_samples += args.batch_size * args.k
            if args.ref_ema:  # Xu et al. 2024: the reference follows the policy, slowly
                with torch.no_grad():
                    for p_ref, p_pol in zip(ref.parameters(), policy.parameters()):
                        p_ref.lerp_(p_pol, args.ref_ema)
        else:
            raise ValueError(f"--algo {args.algo}: train_rl.py has no training step for it")
        step += 1
        t_total += time.time() - t0
        bar.update(1)
        bar.set_postfix(loss=f'{loss.item():.4f}')
        stopping = M.all_any(stop.stop, world)
        if step % args.eval_interval == 0 or step == max_iters or stopping:
            row = {'step': step, 'lr': lr, **M.all_mean({'loss': loss.item(), **stats}, w, world),
                   **(pairs['stats'] if args.algo == 'online_dpo' else {}),
                   'samples_per_s': n_samples / t_total, 'sampling_share': t_sample / t_total}
            if rank == 0:
                M.log_and_save(args.out_dir, row, save, bar, stopping, args.snapshots)
            if stopping:
                return
        elif rank == 0:
            M.early_snapshot(args, step, save)
    bar.close()


def rloo_loss(logp, ref_lp, score, beta, k):
    """RLOO's loss on k samples per prompt (rows in groups of k), from the per-token log-probs of the policy
    (with gradient) and of the reference (B*k, C) and the RM's scores (B*k,). Returns the loss, the penalised
    reward and the KL estimate, (B*k,) each."""
    kl = (logp.detach() - ref_lp).sum(1)  # sequence log-ratio: an unbiased estimate of KL(pi||pi_ref)
    reward = score - beta * kl  # R = RM(x, y) - beta * log(pi/pi_ref)(y|x)
    adv = rloo_advantages(reward, k)
    return -(adv * logp.sum(1)).mean(), reward, kl  # REINFORCE: its gradient is -E[adv * grad log pi(y|x)]


def sample_stats(score, kl, reward, logp, y, m, eos):
    """TRL's log names for a batch of samples: RM score, KL, penalised reward, and the per-token negative
    log-prob (an entropy estimate), length and EOS rate: each a mean of per-sample values, so exact over ranks."""
    return {'objective/scores': score.mean().item(), 'objective/kl': kl.mean().item(),
            'objective/rlhf_reward': reward.mean().item(), 'entropy': (-logp.sum(1) / m.sum(1)).mean().item(),
            'completion_length': m.sum(1).mean().item(), 'eos_rate': (y == eos).any(1).float().mean().item()}


def rloo_advantages(rewards, k):
    """REINFORCE leave-one-out: each sample's reward minus the mean of the other k-1 samples of its prompt.
    Rows come in groups of k. Equal rewards give exactly 0."""
    r = rewards.view(-1, k)
    baseline = (r.sum(1, keepdim=True) - r) / (k - 1)
    return (r - baseline).flatten()


def ppo_rewards(score, logp, ref_lp, mask, beta):
    """PPO's per-token rewards (B, C): -beta * log(pi/pi_ref)(y_t) at every real token, plus the RM's score at the
    last one. Also the sequence KL estimate (B,), as rloo_loss's."""
    kl = (logp - ref_lp) * mask
    rewards = -beta * kl
    last = mask.sum(1).long() - 1
    rewards[torch.arange(rewards.size(0)), last] += score
    return rewards, kl.sum(1)


def gae(rewards, values, mask, gamma, lam):
    """Generalised advantage estimation along each completion (B, C): delta_t = r_t + gamma * V_t+1 - V_t with
    V = 0 past the last real token, A_t = delta_t + gamma * lam * A_t+1. Returns the advantages and the value
    targets A + V, 0 at padding."""
    values = values * mask
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        next_value = values[:, t + 1] if t + 1 < rewards.size(1) else 0.0
        running = rewards[:, t] + gamma * next_value - values[:, t] + gamma * lam * running
        adv[:, t] = running
    return adv * mask, (adv + values) * mask


def whiten(x, mask, eps=1e-8):
    """x shifted and scaled to mean 0 and variance 1 over the real tokens of the batch; 0 at padding."""
    n = mask.sum()
    mean = (x * mask).sum() / n
    var = ((x - mean) ** 2 * mask).sum() / n
    return (x - mean) * torch.rsqrt(var + eps) * mask


def ppo_loss(logp, values, old_logp, old_values, adv, returns, mask, clip, vf_clip, vf_coef):
    """PPO's clipped losses on a minibatch, from per-token tensors (B, C), each a mean over the real tokens:
      policy  max(-A * r, -A * clip(r, 1 - clip, 1 + clip)), r = pi(y_t) / pi_old(y_t), pi_old the sampling policy
      value   max((V - R)^2, (V_old + clip(V - V_old, -vf_clip, vf_clip) - R)^2) / 2, R the GAE value target
    Returns policy + vf_coef * value, and statistics (the shares of tokens whose clipped term is the larger)."""
    n = mask.sum()
    ratio = torch.exp(logp - old_logp)
    pg, pg_clipped = -adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)
    v_clipped = old_values + (values - old_values).clamp(-vf_clip, vf_clip)
    vf, vf_clipped = (values - returns) ** 2, (v_clipped - returns) ** 2
    pg_loss = (torch.max(pg, pg_clipped) * mask).sum() / n
    vf_loss = 0.5 * (torch.max(vf, vf_clipped) * mask).sum() / n
    stats = {'loss/policy': pg_loss.item(), 'loss/value': vf_loss.item(),
             'policy/clipfrac': ((pg_clipped > pg).float() * mask).sum().item() / n.item(),
             'val/clipfrac': ((vf_clipped > vf).float() * mask).sum().item() / n.item()}
    return pg_loss + vf_coef * vf_loss, stats


def ppo_update(fwd, model, optimizer, b, g, lr, args, rank, world, device):
    """--ppo_epochs passes over the sampled batch b (every rank's samples), each in --minibatches minibatches of a
    fresh permutation drawn from g, one optimiser step each. A rank trains on its rows of each minibatch, its loss
    weighted by its share of the minibatch's tokens: DDP's average is then the minibatch's mean over tokens.
    Returns the loss and statistics averaged over the minibatches, weighted alike: their mean over ranks is the
    global batch's."""
    sums, n = {}, 0
    for _ in range(args.ppo_epochs):
        for mb in torch.randperm(b['x'].size(0), generator=g).tensor_split(args.minibatches):
            idx, w = M.shard(mb, rank, world)
            t = {k: v[idx].to(device) for k, v in b.items()}
            if w:  # this rank's share of the minibatch's tokens (a rank left with no rows keeps weight 0)
                w = world * t['m'].sum().item() / b['m'][mb].sum().item()
            with M.autocast(torch.device(device).type):
                logp, values = fwd(t['x'], t['y'], t['m'], args.temperature)
                loss, stats = ppo_loss(logp, values, t['logp'], t['values'], t['adv'], t['returns'], t['m'],
                                       args.clip, args.vf_clip, args.vf_coef)
            M.train_step(model, optimizer, loss * w, lr)
            for k, v in {'loss': loss.item(), **stats}.items():
                sums[k] = sums.get(k, 0.0) + v * w
            n += 1
    mean = {k: v / n for k, v in sums.items()}
    return torch.tensor(mean.pop('loss')), mean


@torch.no_grad()
def online_pairs(policy, ref, reward_of, reward_mean, sample, prompts, u, temperature, beta, rank=0, world=1):
    """One round of the paper's online DPO: k samples of each of the round's prompts (N, P), on the policy's device,
    from the current policy, sample(x, u) with u the round's uniforms (N, k, C); the best and worst by the RM,
    reward_of(x, y, m) - reward_mean, become (chosen, rejected), and prompts whose k samples all score the same carry
    no pair. temperature and beta give the logged KL and penalised reward. Under DDP each rank samples a contiguous
    share of the prompts; every rank gets all pairs, in order."""
    k, device, bs = u.size(1), prompts.device, 64  # bs: prompts per sampling call
    mine = torch.arange(prompts.size(0)).tensor_split(world)[rank]
    out = {key: [] for key in M.PREF_KEYS}
    scores, kls = [], []
    policy.eval()
    for i in range(0, mine.numel(), bs):
        j = mine[i:i + bs]
        x = prompts[j].repeat_interleave(k, dim=0)
        y, m = sample(x, u[j].flatten(0, 1))
        with M.autocast(device.type):
            s = (reward_of(x, y, m) - reward_mean).view(-1, k)
            kl = (M.completion_logprobs(policy, x, y, m, temperature)
                  - M.completion_logprobs(ref, x, y, m, temperature)).sum(1)
        scores.append(s.flatten().cpu())
        kls.append(kl.float().cpu())
        best, worst = s.argmax(1), s.argmin(1)
        keep = s.max(1).values > s.min(1).values
        rows = torch.arange(s.size(0), device=device) * k
        b, w = (rows + best)[keep], (rows + worst)[keep]
        for key, val in (('prompts', x[b]), ('chosen', y[b]), ('chosen_mask', m[b]), ('rejected', y[w]),
                         ('rejected_mask', m[w]), ('r_chosen', s.flatten()[b]), ('r_rejected', s.flatten()[w])):
            out[key].append(val.float().cpu() if key.startswith('r_') or key.endswith('mask') else val.cpu())
    pairs = M.with_ref_logprobs({key: torch.cat(v) for key, v in out.items()}, ref, device)
    pairs = M.all_cat({**pairs, 'scores': torch.cat(scores), 'kls': torch.cat(kls)}, world)
    scores, kls = pairs.pop('scores'), pairs.pop('kls')
    pairs['stats'] = {'objective/scores': scores.mean().item(), 'objective/kl': kls.mean().item(),
                      'objective/rlhf_reward': (scores - beta * kls).mean().item()}
    return pairs


if __name__ == '__main__':
    M.main_guard(main)
