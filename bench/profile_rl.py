"""
Where one RLOO step of train_rl.py spends its time: sampling / reward + reference scoring / policy update.
Needs only the repo (no peer packages). bench.py imports rl_setup() and rloo_step() from here, so the step it
times against TRL is this very code.

  python bench/profile_rl.py              # 7 timed steps after 1 warm-up, medians
  python bench/profile_rl.py --reps 15 --threads 2

The step is train_rl.py --algo rloo's loop body at its defaults (16 prompts x k=4 samples, 8-token prompts,
24-token completions, beta 0.1), on random-init models of the default shape (policy, frozen reference
= a copy of the policy, global reward model with a scalar head), which costs the same as trained ones.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the same defaults as train_rl.py --algo rloo, and the task's prompt/completion lengths (the learning rate
# does not change the timing: it is only a number AdamW multiplies by)
RL = dict(batch_size=16, k=4, prompt_len=8, completion_len=24, beta=0.1, lr=3e-4, temperature=1.0, seed=1337,
          max_iters=150)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reps', type=int, default=7, help='timed RLOO steps (medians over them)')
    p.add_argument('--warmup', type=int, default=1, help='untimed steps first')
    p.add_argument('--threads', type=int, default=1,
                   help='torch/OpenMP threads (default 1, as bench.py: stable on a shared, loaded CPU)')
    return p.parse_args(argv)


if __name__ == '__main__':
    ARGS = parse()
    os.environ['OMP_NUM_THREADS'] = str(ARGS.threads)  # before torch is imported

import torch  # noqa: E402

sys.path.insert(0, ROOT)
import model as M  # noqa: E402
import train_rl  # noqa: E402  (only its rloo_advantages; importing it parses no flags)


def rl_setup(seed=0, n_prompts=4096):
    """Policy, frozen reference (a copy), frozen global reward model, the optimiser train_rl.py builds, and a pool
    of random prompts (excluding EOS). All random-init, default GPTConfig."""
    cfg = M.GPTConfig()
    torch.manual_seed(seed + 1)
    policy = M.GPT(cfg)
    ref = M.frozen(M.GPT(cfg))
    ref.load_state_dict(policy.state_dict())
    torch.manual_seed(seed + 2)
    rm = M.frozen(M.GPT(M.GPTConfig(scalar_head=True)))
    optimizer = policy.configure_optimizer(RL['lr'], weight_decay=0.0)
    prompts = torch.randint(0, cfg.vocab_size - 1, (n_prompts, RL['prompt_len']),
                            generator=torch.Generator().manual_seed(seed + 3))
    return dict(policy=policy, ref=ref, rm=rm, optimizer=optimizer, prompts=prompts, eos=cfg.vocab_size - 1)


def rloo_step(s, step, parts=None):
    """One optimiser step of train_rl.py --algo rloo (its loop body, on CPU). `parts`, if a dict, gets the seconds
    of 'sampling', 'scoring' (reward model + reference log-probs) and 'update' (policy forward, loss, backward,
    clip, AdamW) added. Returns the number of samples (prompts x k)."""
    policy, ref, rm, optimizer, prompts, eos = (s[k] for k in ('policy', 'ref', 'rm', 'optimizer', 'prompts', 'eos'))
    seed, k, beta, temp = RL['seed'], RL['k'], RL['beta'], RL['temperature']
    t0 = time.perf_counter()
    lr = M.cosine_lr(step, RL['max_iters'], RL['lr'], warmup=10)
    policy.eval()
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    idx = torch.randint(prompts.size(0), (RL['batch_size'],), generator=g)
    u = torch.rand(RL['batch_size'] * k, RL['completion_len'], generator=g)
    x = prompts[idx].repeat_interleave(k, dim=0)
    y, m = M.sample(policy, x, RL['completion_len'], eos, temp, u=u)
    t1 = time.perf_counter()
    with M.autocast('cpu'):
        with torch.no_grad():
            score = M.reward_of(rm, 'global', x, y, m) - 0.0  # - reward_mean of the checkpoint
            ref_lp = M.completion_logprobs(ref, x, y, m, temp)
        t2 = time.perf_counter()
        logp = M.completion_logprobs(policy, x, y, m, temp)
        kl = (logp.detach() - ref_lp).sum(1)
        adv = train_rl.rloo_advantages(score - beta * kl, k)
        loss = -(adv * logp.sum(1)).mean()
    stats = {'objective/scores': score.mean().item(), 'objective/kl': kl.mean().item(),  # as train_rl.py logs
             'objective/rlhf_reward': (score - beta * kl).mean().item(),
             'entropy': (-logp.detach().sum(1) / m.sum(1)).mean().item(), 'completion_length': m.sum(1).mean().item(),
             'eos_rate': (y == eos).any(1).float().mean().item()}
    M.train_step(policy, optimizer, loss, lr)
    loss.item()  # train_rl.py shows it in the progress bar
    t3 = time.perf_counter()
    if parts is not None:
        for name, dt in (('sampling', t1 - t0), ('scoring', t2 - t1), ('update', t3 - t2)):
            parts[name] = parts.get(name, 0.0) + dt
        parts['completion_length'] = stats['completion_length']
    return x.size(0)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def profile(reps=7, warmup=1, seed=0, log=print):
    """Median seconds per part over `reps` timed steps, their shares of the median step, and samples/s."""
    s = rl_setup(seed)
    for i in range(warmup):
        rloo_step(s, i)
    rows = []
    for i in range(reps):
        parts = {}
        n = rloo_step(s, warmup + i, parts)
        rows.append(parts)
        log(f"  rl step {i + 1}/{reps}: " + ' '.join(f'{k} {v:.3f}' for k, v in parts.items()))
    out = {'reps': reps, 'samples_per_step': n, 'threads': torch.get_num_threads(),
           'median_s': {k: median([r[k] for r in rows]) for k in ('sampling', 'scoring', 'update')},
           'median_step_s': median([r['sampling'] + r['scoring'] + r['update'] for r in rows]), 'all': rows}
    step = sum(out['median_s'].values())
    out['share'] = {k: v / step for k, v in out['median_s'].items()}
    out['samples_per_s'] = n / out['median_step_s']
    return out


def markdown(r):
    lines = ['| part of one RLOO step (repo) | median s | share |', '|---|---|---|']
    lines += [f"| {k} | {r['median_s'][k]:.3f} | {100 * r['share'][k]:.0f}% |" for k in r['median_s']]
    lines.append(f"| whole step ({r['samples_per_step']} samples) | {r['median_step_s']:.3f} | "
                 f"{r['samples_per_s']:.1f} samples/s |")
    return '\n'.join(lines)


if __name__ == '__main__':
    torch.set_num_threads(ARGS.threads)
    load = os.getloadavg()
    r = profile(ARGS.reps, ARGS.warmup)
    print(markdown(r))
    print(f"{ARGS.reps} steps, {ARGS.threads} threads, load average {load[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
