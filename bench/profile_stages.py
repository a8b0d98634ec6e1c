"""
Where the time goes. Three views, written to results/profile.md:
  1. the main job (`bash run.sh`) stage by stage, from its committed timings.tsv;
  2. a study (the frontier) by kind of job, from results/frontier/timings.tsv: training against scoring;
  3. op by op (torch.profiler), one unit of each kind of work at the demo shape (the default GPTConfig): an SFT
     step (32 x 64 tokens), a DPO step (32 pairs of 8 + 24 tokens), an RLOO step (16 prompts x 4 samples), a
     sampling call and a log-prob pass as eval.py score makes them (256 rows of 8 + 24 tokens); and the rate
     the matrix multiplies reach against one large square multiply on the same thread (the reference rate).

  python bench/profile_stages.py              # about a minute, 1 thread
  python bench/profile_stages.py --reps 5     # more profiled units of each kind
"""
import argparse
import os
import sys
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--reps', type=int, default=3, help='profiled units of each kind (after one warm-up)')
p.add_argument('--demo', default='results/demo/sentiment_seed1337', help="the main job's record")
p.add_argument('--out', default=os.path.join(ROOT, 'results', 'profile.md'))
args = p.parse_args()
os.environ['OMP_NUM_THREADS'] = '1'  # before torch is imported: one thread, as the jobs run side by side

import torch  # noqa: E402
from torch.profiler import profile as torch_profile, ProfilerActivity  # noqa: E402

sys.path[:0] = [ROOT, HERE]
import model as M  # noqa: E402
import profile_rl  # noqa: E402  (rl_setup, rloo_step: train_rl.py's loop body)
from train_mle import lm_loss  # noqa: E402

# aten ops by kind; everything else (layer norms, GELU, adds, copies, the optimiser's updates) is 'other'
KINDS = {'matrix multiply': ('aten::mm', 'aten::addmm', 'aten::bmm'),
         'attention': ('aten::_scaled_dot_product_flash_attention_for_cpu',
                       'aten::_scaled_dot_product_flash_attention_for_cpu_backward'),
         'softmax, log-softmax, cumsum': ('aten::_softmax', 'aten::_log_softmax', 'aten::_log_softmax_backward_data',
                                          'aten::cumsum', 'aten::nll_loss_forward', 'aten::nll_loss_backward')}


def timings(path):
    """{name: seconds} from a timings.tsv (`name<TAB>seconds`; 'unrecorded' skipped)."""
    rows = [line.rstrip('\n').split('\t') for line in open(os.path.join(ROOT, path)) if '\t' in line]
    return {k: float(v) for k, v in rows if v.replace('.', '', 1).isdigit()}


def main_job_md():
    """Stage by stage; beside it, if kept, the same job before its stages after the pairs ran in two lanes
    (timings_before_lanes.tsv: run.sh at b65f794, same machine, same day)."""
    t = timings(os.path.join(args.demo, 'timings.tsv'))
    before_path = os.path.join(args.demo, 'timings_before_lanes.tsv')
    b = timings(before_path) if os.path.exists(os.path.join(ROOT, before_path)) else {}
    for d in (t, b):
        d.pop('cpus', None)
    total, b_total = t.pop('total', None), b.pop('total', None)
    work = sum(t.values())
    L = [f"## 1. The main job: `{args.demo}/timings.tsv`\n", '| stage | wall s | share of summed stage time |',
         '|---|---|---|']
    L += [f'| {k} | {v:.0f} | {100 * v / work:.0f}% |' for k, v in sorted(t.items(), key=lambda kv: -kv[1])]
    L.append(f'\nSummed stage time {work:.0f} s' + (f'; wall time {total:.0f} s (stages after the pairs run in two '
                                                      f'lanes side by side)' if total else '') + '.')
    if b and total and b_total:
        pre = ('sft', 'label')  # the same commands before and after: their ratio is the run-to-run noise
        after, bef = total - sum(t[k] for k in pre), b_total - sum(b[k] for k in pre)
        L.append(f"\nBefore the lanes (`{before_path}`, one run of the same job on the same machine): wall time "
                 f"{b_total:.0f} s; after the pairs {bef:.0f} s, against {after:.0f} s now ({bef / after:.2f}x). "
                 f"The unchanged SFT stage took {b['sft']:.0f} s then and {t['sft']:.0f} s now "
                 f"({b['sft'] / t['sft']:.2f}x): one run each, so a difference of that size is noise.")
    return '\n'.join(L)


def study_md(path='results/frontier/timings.tsv'):
    kinds = defaultdict(float)
    for name, s in timings(path).items():
        job = name.split('/')[-1]
        kind = 'scoring' if job.startswith('score') else 'training: ' + job.split('_b')[0].rstrip('0123456789.')
        kinds[kind] += s
    total = sum(kinds.values())
    L = [f'## 2. A study: the frontier, `{path}`\n', '| kind of job | one-thread CPU-hours | share |', '|---|---|---|']
    L += [f'| {k} | {v / 3600:.2f} | {100 * v / total:.0f}% |' for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])]
    L.append(f'\n{total / 3600:.2f} one-thread CPU-hours in all (jobs with a recorded time).')
    return '\n'.join(L)


def units():
    """{kind of work: a function doing one unit of it}, all at the demo shape, random init (the cost of trained
    weights is the same)."""
    torch.manual_seed(0)
    cfg = M.GPTConfig()
    sft = M.GPT(cfg)
    sft_opt = sft.configure_optimizer(2e-3)
    stream = torch.randint(0, cfg.vocab_size - 1, (32, cfg.block_size + 1))
    dpo = M.GPT(cfg)
    dpo_opt = dpo.configure_optimizer(1e-4, weight_decay=0.0)
    B, P, C = 32, 8, 24
    pairs = {'prompts': torch.randint(0, cfg.vocab_size - 1, (B, P)),
             'chosen': torch.randint(0, cfg.vocab_size - 1, (B, C)), 'rejected': torch.randint(0, cfg.vocab_size - 1, (B, C)),
             'chosen_mask': torch.ones(B, C), 'rejected_mask': torch.ones(B, C),
             'ref_chosen': torch.full((B,), -200.0), 'ref_rejected': torch.full((B,), -200.0)}
    rl = profile_rl.rl_setup(0)
    prompts = torch.randint(0, cfg.vocab_size - 1, (256, P))
    gen = torch.Generator().manual_seed(0)
    y, m = M.sample(sft, prompts, C, cfg.vocab_size - 1, generator=gen)
    step = [0]

    def sft_step():
        M.train_step(sft, sft_opt, lm_loss(sft, stream), 1e-3)

    def dpo_step():
        lp_c, lp_r = M.pair_logprobs(dpo, pairs)
        loss, _, _ = M.dpo_loss(lp_c, lp_r, pairs['ref_chosen'], pairs['ref_rejected'], 0.1)
        M.train_step(dpo, dpo_opt, loss, 1e-4)

    def rloo_step():
        step[0] += 1
        profile_rl.rloo_step(rl, step[0])

    @torch.no_grad()
    def logprobs():
        M.completion_logprobs(sft, prompts, y, m)

    return {'SFT step (32 x 64 tokens)': sft_step, 'DPO step (32 pairs)': dpo_step,
            'RLOO step (64 samples)': rloo_step,
            'sampling (256 x 24 new tokens)': lambda: M.sample(sft, prompts, C, cfg.vocab_size - 1, generator=gen),
            'log-probs (256 x 8+24 tokens)': logprobs}


def gemm_reference(n=1024, reps=5, trials=5):
    """The best rate of one large square multiply over several trials (a shared CPU only ever slows a trial
    down). A reference, not a hard ceiling: some of the model's shapes run a little faster."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def ops_md():
    ref = gemm_reference()
    L = ['## 3. Op by op, one thread\n',
         '| work | seconds per unit | matrix multiply | attention | softmax, log-softmax, cumsum | other | '
         'matrix multiply GFLOP/s |', '|---|---|---|---|---|---|---|']
    rates = []
    for name, fn in units().items():
        fn()  # warm-up
        with torch_profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            t = time.perf_counter()
            for _ in range(args.reps):
                fn()
            wall = (time.perf_counter() - t) / args.reps
        ev = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in ev)
        share = {k: sum(e.self_cpu_time_total for e in ev if e.key in ops) / total for k, ops in KINDS.items()}
        mm = [e for e in ev if e.key in KINDS['matrix multiply']]
        rate = sum(e.flops for e in mm) / max(1e-9, sum(e.self_cpu_time_total for e in mm) * 1e-6) / 1e9
        rates.append(rate)
        L.append(f'| {name} | {wall:.3f} | ' + ' | '.join(f'{100 * s:.0f}%' for s in share.values()) +
                 f' | {100 * (1 - sum(share.values())):.0f}% | {rate:.0f} |')
    L.append(f'\nShares are of the profiled ops\' self time (the profiler adds its own overhead, so the seconds '
             f'run a little long). The reference: one 1024 x 1024 x 1024 multiply reaches {ref:.0f} GFLOP/s on '
             f'this thread; {args.reps} profiled units of each kind after one warm-up. The matrix multiplies, the '
             f'largest share of every kind of work, run at {100 * min(rates) / ref:.0f}-'
             f'{100 * max(rates) / ref:.0f}% of that rate: the remaining speed-ups on this CPU are less work '
             f'or lower precision, not faster kernels.')
    return '\n'.join(L)


if __name__ == '__main__':
    load = os.getloadavg()[0]
    body = [main_job_md(), study_md(), ops_md()]
    head = (f'# Profile\n\n`python bench/profile_stages.py` on {os.cpu_count()} CPUs, torch {torch.__version__}, '
            f'{time.strftime("%Y-%m-%d")}; 1-minute load average {load:.2f} before, {os.getloadavg()[0]:.2f} after.\n')
    text = '\n\n'.join([head] + body) + '\n'
    open(args.out, 'w').write(text)
    print(text)
