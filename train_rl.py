"""
On-policy fine-tuning against a reward model with a KL penalty to the reference policy: the second stage of
the online route. Maximises E[RM(x, y)] - beta * KL(pi || pi_ref).
  --algo rloo       : REINFORCE with a leave-one-out baseline over k samples per prompt; the KL enters the
                      reward at the sequence level, R = RM(x, y) - beta * sum_t log(pi / pi_ref)(y_t).
  --algo online_dpo : the paper's online DPO: k samples per prompt from the sampler (the init policy), the RM's
                      best and worst become a pair, trained with the DPO loss and beta of offline DPO.
                      --rounds 1 is the paper's single batch; more rounds resample from the current policy.

  python train_rl.py --algo rloo --reward out/rm --init out/sft --out_dir out/rloo
  python train_rl.py --algo online_dpo --reward out/rm --init out/dpo --ref out/sft --out_dir out/odpo
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

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--algo', choices=['rloo', 'online_dpo'], required=True)
M.add_common_args(p)
p.add_argument('--reward', required=True,
               help="a reward checkpoint from train_rm.py (global or local), or a dpo policy (its implicit reward)")
p.add_argument('--init', default='out/sft', help='the policy to start from (sft or dpo checkpoint)')
p.add_argument('--ref', default=None, help='the reference policy (default: --init if it is sft, else its ref)')
p.add_argument('--beta', type=float, default=0.1, help='KL weight (online_dpo: the DPO beta)')
p.add_argument('--k', type=int, default=None, help='samples per prompt (rloo 4, online_dpo 8)')
p.add_argument('--temperature', type=float, default=1.0, help='for sampling and for the log-probs alike')
p.add_argument('--lr', type=float, default=None, help='peak learning rate (rloo 3e-4, online_dpo 1e-4 as offline DPO)')
p.add_argument('--batch_size', type=int, default=None, help='prompts per step (rloo 16) or pairs (online_dpo 32)')
p.add_argument('--eval_interval', type=int, default=None, help='steps between log lines and checkpoints')
g = p.add_argument_group('online_dpo')
g.add_argument('--n_prompts', type=int, default=2000, help='training prompts sampled per round')
g.add_argument('--rounds', type=int, default=1, help='1 = the paper\'s single batch; >1 resamples each round')
g.add_argument('--epochs', type=float, default=1.0, help='passes over each round\'s pairs')
M.add_experiment_args(p)


def main():
    args = p.parse_args()
    rloo = args.algo == 'rloo'
    args.out_dir = args.out_dir or f'out/{args.algo}'
    args.k = args.k or (4 if rloo else 8)
    args.lr = args.lr or (3e-4 if rloo else 1e-4)
    args.batch_size = args.batch_size or (16 if rloo else 32)
    if args.beta <= 0:
        raise ValueError(f"--beta must be > 0, got {args.beta}")
    if args.k < 2:
        raise ValueError(f"--k must be >= 2 (a leave-one-out baseline and a best/worst pair need two), got {args.k}")
    if args.temperature <= 0:
        raise ValueError(f"--temperature must be > 0, got {args.temperature}")
    rank, world, device = M.ddp_setup(M.get_device(args.device))
    dt = torch.device(device).type
    if not rloo and args.n_prompts < world:
        raise ValueError(f"--n_prompts {args.n_prompts} < {world} ranks: a rank would have no prompts to sample")
    M.seed_everything(args.seed)

    # ---- policy, reference, reward model: all must share a vocabulary
    init = M.load_checkpoint(args.init, stages=['sft', 'dpo', 'rl'])
    args.ref = args.ref or (args.init if init['stage'] == 'sft' else init['ref'])
    ref_ckpt = M.load_checkpoint(args.ref, stages=['sft'], vocab_size=init['vocab_size'])
    rm_ckpt, rm = M.load_reward(args.reward, device, init['vocab_size'])
    if rm_ckpt['stage'] == 'rm' and rm_ckpt.get('reward_mean') is None:
        raise ValueError(f"{args.reward} is an unfinished reward-model run")
    task = rm_ckpt['task']
    if init['task'] is not None and init['task'] != task:
        raise ValueError(f"{args.init} was trained for task {init['task']}, the reward model for {task}")
    policy = M.model_from_checkpoint(init, device)
    ref = M.frozen(M.model_from_checkpoint(ref_ckpt, device))
    eos = policy.cfg.vocab_size - 1
    prompts, _, _ = M.get_prompts(policy.cfg.vocab_size, 'train', task['prompt_len'], task['completion_len'])

    def rm_score(x, y, m):
        # RLOO's leave-one-out baseline and online DPO's ranks ignore a constant; the RM's mean only makes the
        # logged reward start near 0 (an implicit reward has none)
        return rm(x, y, m) - (rm_ckpt.get('reward_mean') or 0.0)

    def sample(x, u):
        return M.sample(policy, x, task['completion_len'], eos, args.temperature, u=u.to(device))

    if rloo:
        max_iters = args.max_iters or 150  # one fresh batch of samples per step
    else:
        steps_per_round = math.ceil(args.epochs * math.ceil(args.n_prompts / args.batch_size))
        max_iters = args.max_iters or args.rounds * steps_per_round
    args.eval_interval = args.eval_interval or max(1, min(50, max_iters // 10))
    if rank == 0:
        print(f"{args.algo}: policy {args.init}, reference {args.ref}, reward {args.reward} ({rm_ckpt.get('rm_type', 'implicit')}), "
              f"task {task['name']}, beta {args.beta}, k {args.k}, {max_iters} steps, device {device}")
    optimizer = policy.configure_optimizer(args.lr, weight_decay=0.0)
    ck, config = M.begin_run(args, policy, optimizer, 'rl', rank, world, max_iters=max_iters, device=device)
    step, pairs = (ck['step'], ck['pairs']) if ck else (0, None)
    fwd = M.ddp_wrap(policy, world)

    def save():
        M.save_checkpoint(f'{args.out_dir}/ckpt.pt', model=policy.state_dict(), model_args=asdict(policy.cfg),
                          config=config, stage='rl', vocab_size=policy.cfg.vocab_size, task=task, step=step,
                          optimizer=optimizer.state_dict(), ref=args.ref, beta=args.beta, pairs=pairs)

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
        if rloo:
            g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
            idx = torch.randint(prompts.size(0), (args.batch_size,), generator=g)
            u = torch.rand(args.batch_size, args.k, task['completion_len'], generator=g)
            mine, w = M.shard(torch.arange(args.batch_size), rank, world)  # this rank's prompts
            x = prompts[idx[mine]].to(device).repeat_interleave(args.k, dim=0)  # k samples of each prompt, adjacent
            ts = time.time()
            y, m = sample(x, u[mine].flatten(0, 1))
            t_sample += time.time() - ts
            with M.autocast(dt):
                with torch.no_grad():
                    score = rm_score(x, y, m)
                    ref_lp = M.completion_logprobs(ref, x, y, m, args.temperature)
                logp = M.completion_logprobs(fwd, x, y, m, args.temperature)
                # REINFORCE on R = RM(x,y) - beta*log(pi/pi_ref)(y|x), baselined by the prompt's other k-1 samples
                loss, reward, kl = rloo_loss(logp, ref_lp, score, args.beta, args.k)
            stats = {'objective/scores': score.mean().item(), 'objective/kl': kl.mean().item(),
                     'objective/rlhf_reward': reward.mean().item(),
                     # per token, averaged over samples: a per-sample mean, so it reduces exactly over ranks
                     'entropy': (-logp.detach().sum(1) / m.sum(1)).mean().item(),
                     'completion_length': m.sum(1).mean().item(),
                     'eos_rate': (y == eos).any(1).float().mean().item()}
            n_samples += args.batch_size * args.k
        else:
            rnd, pos = divmod(step, steps_per_round)
            if pos == 0 and (pairs is None or pairs['round'] != rnd):
                ts = time.time()
                pairs = online_pairs(policy, ref, rm_score, sample, prompts, task['completion_len'], args, rnd, device,
                                     rank, world)
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
        step += 1
        t_total += time.time() - t0
        bar.update(1)
        bar.set_postfix(loss=f'{loss.item():.4f}')
        stopping = M.all_any(stop.stop, world)
        if step % args.eval_interval == 0 or step == max_iters or stopping:
            row = {'step': step, 'lr': lr, **M.all_mean({'loss': loss.item(), **stats}, w, world),
                   **({} if rloo else pairs['stats']),
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


def rloo_advantages(rewards, k):
    """REINFORCE leave-one-out: each sample's reward minus the mean of the other k-1 samples of its prompt.
    Rows come in groups of k. Equal rewards give exactly 0."""
    r = rewards.view(-1, k)
    baseline = (r.sum(1, keepdim=True) - r) / (k - 1)
    return (r - baseline).flatten()


@torch.no_grad()
def online_pairs(policy, ref, reward, sample, prompts, C, args, rnd, device, rank=0, world=1, bs=64):
    """One round of the paper's online DPO: k samples per prompt from the current policy, the RM's best and
    worst become (chosen, rejected); prompts whose k samples all score the same carry no pair.
    Under DDP each rank samples a contiguous share of the prompts; every rank gets all pairs, in order."""
    g = torch.Generator().manual_seed(args.seed * 7919 + rnd)
    sel = torch.randperm(prompts.size(0), generator=g)[:args.n_prompts]
    u = torch.rand(sel.numel(), args.k, C, generator=g)  # one uniform per sample and token, as in rloo
    mine = torch.arange(sel.numel()).tensor_split(world)[rank]
    out = {k: [] for k in M.PREF_KEYS}
    scores, kls = [], []
    policy.eval()
    for i in range(0, mine.numel(), bs):
        j = mine[i:i + bs]
        x = prompts[sel[j]].to(device).repeat_interleave(args.k, dim=0)
        y, m = sample(x, u[j].flatten(0, 1))
        with M.autocast(torch.device(device).type):
            s = reward(x, y, m).view(-1, args.k)
            kl = (M.completion_logprobs(policy, x, y, m, args.temperature)
                  - M.completion_logprobs(ref, x, y, m, args.temperature)).sum(1)
        scores.append(s.flatten().cpu())
        kls.append(kl.float().cpu())
        best, worst = s.argmax(1), s.argmin(1)
        keep = s.max(1).values > s.min(1).values
        rows = torch.arange(s.size(0), device=device) * args.k
        b, w = (rows + best)[keep], (rows + worst)[keep]
        for key, val in (('prompts', x[b]), ('chosen', y[b]), ('chosen_mask', m[b]), ('rejected', y[w]),
                         ('rejected_mask', m[w]), ('r_chosen', s.flatten()[b]), ('r_rejected', s.flatten()[w])):
            out[key].append(val.float().cpu() if key.startswith('r_') or key.endswith('mask') else val.cpu())
    pairs = M.with_ref_logprobs({k: torch.cat(v) for k, v in out.items()}, ref, device)
    pairs = M.all_cat({**pairs, 'scores': torch.cat(scores), 'kls': torch.cat(kls)}, world)
    scores, kls = pairs.pop('scores'), pairs.pop('kls')
    pairs['stats'] = {'objective/scores': scores.mean().item(), 'objective/kl': kls.mean().item(),
                      'objective/rlhf_reward': (scores - args.beta * kls).mean().item()}
    pairs['round'] = rnd
    return pairs


if __name__ == '__main__':
    M.main_guard(main)
