"""
Data efficiency, second pass: gold reward at a fixed KL budget against the number of preference pairs N, per
method, read as the pairs multiplier (how many times more pairs DPO needs to reach what RM + RL reaches at N).
The first pass (once experiments/data_efficiency.py, now retired: git history keeps its job list and records) taught
what to change: snapshots spaced as a fraction of each run left the long runs' first snapshot past the budget,
--keep_best kept RMs from their first eval, one beta per method, and N ended at 8000. Nothing of its runs is reused:
this pass labels its own pairs from the frontier's SFT.

  python experiments/data_efficiency_v2.py              # everything not yet done, two one-thread jobs side by side
  python experiments/data_efficiency_v2.py --hours 1.8  # start no new job after 1.8 hours (then run it again)
  python experiments/data_efficiency_v2.py --dry        # the jobs still to do and their commands

The protocol, fixed before any of its val numbers existed, then revised once on val numbers only (below):
  pairs     per (task, seed), one labelled set from the seed's SFT (the frontier's SFT and labeller: ties dropped,
            a prompt reused at most 10 times, tau set for 93% agreement) of max(N) untied train pairs and 500 val
            pairs; a stage at N trains on the first N (--n_pairs), so a larger N only adds pairs. N runs to 16000
            on sentiment and overlap; on short the labeller cannot supply 16000 untied pairs at 10 uses of a prompt
            (87% of its pairs tie), so it stops at 8000. sentiment, where the paper expects a large multiplier,
            gets five values of N; short and overlap, where it expects about 1, get three (the cost cut).
  RM        2 epochs but at least 250 steps, its final checkpoint: the frontier's RM (2 epochs of 4000 pairs is
            250 steps) at every N. Not chosen by val likelihood, which kept the first eval of 35 of the 36 small-N
            RMs of the first pass (the likelihood peaks before the RM's scale grows), nor by val accuracy, a noisy
            pick on 500 pairs that the frontier's RM does not get. Each N's val accuracy and log-likelihood are
            in its log.
  DPO       lr 3e-4 (the frontier's), 1 epoch but at least 300 steps.
  RLOO      against that N's RM, 200 steps (the frontier's).
  snapshots for both, every 5 steps up to step 60, then every 20 steps, at every N. A run left with fewer than 3
            val snapshots inside a budget is trained again (the same run, bitwise: a batch is a function of seed and
            step) with a snapshot at every step up to its first val snapshot past that budget, and those are
            candidates too (<run>_dense): RLOO at beta 0.1 on overlap jumped from 2 to 13 nats between steps 10
            and 15. The rule came after overlap seed 1337's test picks at N = 250 and 1000 were printed (commit
            ae3aaab), on val KLs only; the picks it touches are redone under it.
  both      at beta 0.1 and 0.03 (the frontier's two): the same tuning for each method at every N.
  best-of-n SFT samples reranked by every N's RM, n = 1, 2, 4, 8, 16 (16 per prompt, not 64: the first pass's
            largest single cost); its KL is at most log 16 = 2.8 nats, inside both budgets.
  choice    a method's value at N is its candidate (both betas' snapshots, and SFT itself) with the best mean
            gold reward on the val prompts among those with val KL to SFT within the budget; only that one is
            scored on the test prompts, once per budget. Budgets: 10 nats per completion (the frontier's middle
            one) and 20 nats, where every run has room (the first pass's DPO and RLOO passed 10 nats within
            100-125 steps at small N). Val: 300 of the val prompts (the same for every candidate of a task and
            seed), one sample each; test: every test prompt, two samples each.
The revision: the first chunk, with a snapshot every 20 DPO / 10 RLOO steps and val scored on every val prompt
twice, left 8 of its 9 runs at N <= 500 with fewer than 3 val snapshots inside 10 nats (DPO crossed 10 nats by
step 20-60, RLOO by step 10-30), and projected past the compute budget. Its records left the tree (git history
keeps them; their timings are in results/retired/data_efficiency_v2_superseded_timings.tsv); only val KLs were read to change the spacing, the grid and the val prompts, and no method's setting changed.
Whether the new spacing keeps 3 snapshots of every run inside each budget is counted from the records (the
report's check table), not assumed.
One machine per block: the stages are bitwise reproducible on one machine, not across CPUs, and a fresh clone
retrains the SFT and relabels. So a (task, seed) block left unfinished and resumed on another machine would mix
two SFTs; the runner then stops the block (its relabelling or a retrained log disagrees with the committed one).
  python experiments/data_efficiency_v2.py --set_aside overlap 1337   # redo that block from the SFT as it now is
  python experiments/data_efficiency_v2.py --set_aside sft 2          # accept seed 2's retrained SFT
moves the block's records, label statistics and logs (or the SFT's log) to results/data_efficiency_v2/stale/, with
their timings (they spent CPU); a finished block needs no job, so it is never mixed. The one block set aside so far
(overlap seed 1337) was redone whole; its set-aside records left the tree, their timings are in
results/retired/data_efficiency_v2_stale_timings.tsv.
Online DPO (optional in the design) is left out. experiments/report.py draws the curves and the multiplier.
Records: results/data_efficiency_v2/<task>_seed<seed>_<run>_val.jsonl for every snapshot of a run, and
<task>_seed<seed>_<method>_n<N>_kl<budget>_test.jsonl for the one chosen checkpoint; best-of-n: _bon_<split>.
"""
import math
import os

import data_efficiency as DE  # read, choose and resolve: the val-best candidate within a budget
import frontier as F  # the runner, the seeds and the SFT runs

OUT, RES = 'out/data_efficiency_v2', 'results/data_efficiency_v2'
NS = {'sentiment': (250, 1000, 4000, 8000, 16000), 'short': (250, 1000, 8000), 'overlap': (250, 1000, 16000)}
BUDGETS = (10, 20)
BETAS, LR = (0.1, 0.03), 3e-4
SNAPSHOTS = '--eval_interval 20 --snapshots --early_snapshots 5 60'  # the same steps for both methods at every N
BEST_OF = 16
SCORE = {'val': '--n_prompts 300 --samples 1', 'test': '--samples 2'}


def rm_steps(n):
    return max(250, math.ceil(2 * n / 32))


def dpo_steps(n):
    return max(300, math.ceil(n / 32))


def jobs():
    """(name, dependencies, command, records or None) in the order they are wanted: seed-major (a seed's SFT
    just before its block, so that a first chunk completes one seed), then task."""
    out = []
    for seed in F.SEEDS:
        out.append((f'{F.OUT}/seed{seed}/sft', [], f'python train_mle.py --loss sft --seed {seed} --no_tqdm', None))
        for task in F.TASKS:
            ns, sft, t = NS[task], f'{F.OUT}/seed{seed}/sft', f'{OUT}/seed{seed}/{task}'
            prefs, common = f'{t}/prefs.pt', f'--seed {seed} --no_tqdm'
            score = {split: f'python eval.py score --ref {sft} --task {task} --split {split} --seed {seed} {s}'
                     for split, s in SCORE.items()}
            out.append((f'{t}/label', [sft], f'python eval.py label --policy {sft} --task {task} --seed {seed} '
                        f'--n_pairs {max(ns)} --n_val 500 --drop_ties --max_per_prompt 10 --agreement 0.93 '
                        f'--out {prefs} --json {RES}/labels_{task}_seed{seed}.json', None))
            for n in ns:
                out.append((f'{t}/rm_n{n}', [f'{t}/label'], f'python train_rm.py --prefs {prefs} --n_pairs {n} '
                            f'--init {sft} --max_iters {rm_steps(n)} {common}', None))
            rms = [f'{t}/rm_n{n}' for n in ns]
            for split in ('val', 'test'):
                out.append((f'{t}/score_bon_{split}', rms, f'{score[split]} {sft} --best_of {BEST_OF} '
                            f'--rm {" ".join(rms)}', (task, seed, 'bon', split)))
            for n in ns:
                runs = {}
                for beta in BETAS:
                    runs[f'dpo_b{beta}_n{n}'] = (
                        [f'{t}/label'], f'python train_mle.py --loss dpo --prefs {prefs} --n_pairs {n} --ref {sft} '
                        f'--beta {beta} --lr {LR} --max_iters {dpo_steps(n)} {SNAPSHOTS} {common}')
                    runs[f'rloo_b{beta}_n{n}'] = (
                        [f'{t}/rm_n{n}'], f'python train_rl.py --algo rloo --reward {t}/rm_n{n} --init {sft} '
                        f'--beta {beta} --max_iters 200 {SNAPSHOTS} {common}')
                for run, (deps, cmd) in runs.items():
                    method, setting = run.split('_', 1)
                    out += [(f'{t}/{run}', deps, cmd, None),
                            (f'{t}/score_{run}_val', [f'{t}/{run}'], f"{score['val']} SNAPSHOTS:{t}/{run}",
                             (task, seed, run, 'val', method, setting))]
                    if may_need_dense(task, seed, run):
                        out += [(f'{t}/{run}_dense', deps + [f'{t}/score_{run}_val'], f'DENSE:{task}:{seed}:{run}:{cmd}', None),
                                (f'{t}/score_{run}_dense_val', [f'{t}/{run}_dense'], f"{score['val']} SNAPSHOTS:{t}/{run}_dense",
                                 (task, seed, f'{run}_dense', 'val', method, setting))]
                for method in ('dpo', 'rloo'):
                    vals = [name for beta in BETAS for dense in ('', '_dense')
                            for name in [f'{t}/score_{method}_b{beta}_n{n}{dense}_val'] if name in {j[0] for j in out}]
                    for budget in BUDGETS:
                        name = f'{method}_n{n}_kl{budget}'
                        out.append((f'{t}/score_{name}_test', vals + [f'{t}/score_bon_val'],
                                    f"{score['test']} CHOSEN:{task}:{seed}:{method}:{n}:{budget}",
                                    (task, seed, name, 'test', method, f'n{n}_kl{budget}')))
    return out


def chosen(task, seed, method, n, budget, res=RES):
    """The val record the protocol picks: the best val gold reward within the budget among both betas'
    snapshots (dense ones included) and SFT itself (best-of-1 of the best-of-n samples)."""
    seed, n, budget = int(seed), int(n), float(budget)
    sft = next(r for r in DE.read(task, seed, 'bon', 'val', res) if r['best_of'] == 1)
    runs = [f'{method}_b{beta}_n{n}{d}' for beta in BETAS for d in ('', '_dense')]
    cands = [r for run in runs if os.path.exists(F.record_path(res, task, seed, run, 'val'))
             for r in DE.read(task, seed, run, 'val', res)]
    return DE.choose(cands, sft, budget)


def may_need_dense(task, seed, run, res=RES):
    """A run not yet scored on val may need a dense rerun (decided when it runs); a scored one, if dense_until says."""
    return not os.path.exists(F.record_path(res, task, seed, run, 'val')) or dense_until(task, seed, run, res) is not None


def dense_until(task, seed, run, res=RES):
    """None if the run has 3 val snapshots inside every budget, else the step of its first snapshot past the
    largest budget it falls short in: the run is trained again with a snapshot at every step up to there."""
    rows = sorted((r for r in DE.read(task, seed, run, 'val', res) if r['method'] != 'human'), key=lambda r: r['step'])
    short = [b for b in BUDGETS if sum(r['kl'] <= b for r in rows) < 3]
    return next(r['step'] for r in rows if r['kl'] > max(short)) if short else None


def resolve(cmd, res=RES):
    """CHOSEN:task:seed:method:N:budget becomes the checkpoint that the val records choose. DENSE:task:seed:run:CMD
    becomes the run's command CMD with a snapshot at every step up to dense_until (the same run: a batch is a function
    of seed and step, and evals draw nothing), or nothing to do (then its scoring finds no snapshots and writes no records)."""
    if cmd.startswith('DENSE:'):
        _, task, seed, run, cmd = cmd.split(':', 4)
        until = dense_until(task, seed, run, res)
        return 'true' if until is None else cmd.replace(SNAPSHOTS, f'--eval_interval 1000 --snapshots --early_snapshots 1 {until}')
    return DE.resolve(cmd, lambda *spec: chosen(*spec, res=res))


def block(task, seed):
    """--set_aside TASK SEED: the block's files and jobs (task 'sft': the seed's SFT log)."""
    if task == 'sft':
        return [f'logs/seed{seed}_sft.jsonl'], lambda job: job == f'{F.OUT}/seed{seed}/sft'
    if task in NS:
        return ([f'{task}_seed{seed}_', f'labels_{task}_seed{seed}.json', f'logs/seed{seed}_{task}_'],
                lambda job: f'/seed{seed}/{task}/' in job)
    raise SystemExit(f"--set_aside: no block '{task}': one of sft, {', '.join(NS)}")


if __name__ == '__main__':
    os.chdir(F.ROOT)
    F.main(jobs(), RES, __doc__, resolve, block=block)
