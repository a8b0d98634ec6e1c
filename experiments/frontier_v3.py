"""
The answer across the KL axis: gold reward against KL to SFT for DPO, RLOO and best-of-N, each method's
checkpoint chosen on val at every budget from 2 to 30 nats and scored on test once, so that no single budget
decides the comparison. Driven by the stage commands, with the frontier's runner (experiments/frontier.py).

  python experiments/frontier_v3.py              # everything not yet done, two one-thread jobs side by side
  python experiments/frontier_v3.py --hours 1.8  # start no new job after 1.8 hours (then run it again)
  python experiments/frontier_v3.py --dry        # the jobs still to do and their commands

A method of the grid at new flags (an ablation), read per budget against DPO and RLOO by experiments/report.py:
  python experiments/frontier_v3.py --ablate rloo --flags '--algo ppo --lr 1e-4' --name ppo --task sentiment
runs RLOO's command at every beta with the flags appended (argparse keeps the last value: here PPO at its own
default rate, since the grid's RLOO command sets 3e-4) as method 'ppo', under the same schedule, band rule and val
choice, on every seed of the task (or --seed N), each block scored by this sweep through best-of-N first (it
stops otherwise): checkpoints in out/ablations_v3/ppo/, records in results/ablations_v3/ppo/. A block's ablation
runs on that block's machine (its machine record is rerun and compared where out/ lacks the sweep's job); the
stage checks the flags before any job runs; a name in use needs --resume.

The protocol, written down before any of its numbers existed:
  blocks    sentiment on 5 seeds, short and overlap on 3 (sentiment first, then the controls); per seed the
            frontier's SFT, per (task, seed) the frontier's pairs (4000 untied train pairs and 500 val pairs of two
            SFT samples, tau set for 93% agreement with the gold order) and its global RM. A block runs on one
            machine: its first job records the machine (experiments/machine.py), and the runner stops a block
            whose rerun disagrees with a committed record (set it aside to redo it whole).
  betas     the same grid for both trained methods, so each gets the same tuning budget: 1.0, 0.5, 0.2, 0.1,
            0.05, 0.02 (a 1-2-5 grid, two to three per factor of ten). Chosen on val KLs alone, before this sweep:
            in the frontier's records RLOO's KL levels off near 10 nats at beta 0.1 and near 19 at 0.03, and in a
            pilot near 1.2 at 1.0 and 3.6 at 0.3, so its level falls about as beta^-0.7 and a factor of 2-2.5
            between betas puts the levels about 1.6-1.9x apart, from about 1 nat to about 25-30; DPO's KL grows
            along its run (about 4.6 nats at beta 1.0 after 3 epochs, 13 at 0.1, 26-32 at 0.03), so the same
            grid's runs pass every budget. Online DPO is left out (the cost): its rows stay in the first frontier.
  schedules one rule per method at every beta. DPO: lr 3e-4, 3 epochs (375 steps), a snapshot every 5 steps up
            to 60 and every 25 after. RLOO: lr 3e-4, 200 steps (its KL levels off within about 100 in the
            frontier's runs), a snapshot every 2 steps up to 40 and every 20 after. Best-of-N: SFT samples
            reranked by the RM, n = 1, 2, 4, ..., 64 (KL at most log 64 = 3.2 nats).
  bands     the KL axis sampled everywhere: per (task, seed, method), its runs over all betas hold at least 2 val
            snapshots in every 2-nat band [2, 4), [4, 6), ... that lies below the highest KL they reach (at most 30).
            RL's KL can jump several nats in a step, so the coverage comes from the betas; where a band is still
            thin, the first run (in the grid's order) whose KL path crosses it between two snapshots more than a
            step apart is trained again (the same run, bitwise: a batch is a function of seed and step) keeping a
            snapshot at every step up to the later one, and the steps between them (8 evenly spaced, if more) are
            scored on val as candidates too (<run>_dense). Amended after three sentiment seeds, on val KLs alone
            (DPO at beta 0.02 moves up to about a nat a step near 25 nats, so its 8 steps of a 25-step window left
            [24, 26) with one snapshot on 2 of 3 seeds): a band still thin after the dense pass gets every step
            the dense rerun kept between two scored ones whose KL path crosses it, in the first run in the grid's
            order that has them (<run>_fill; fill_plan), and the picks are chosen again with them. Amended a
            second time after ten blocks, their test numbers read (so said in the report), on val KLs alone: 4 of
            20 (task, seed, method) still had a thin band, each crossed by one run in one or two steps (a jump no
            rerun can split) or lying between two betas' levels, so a band still thin after the fill pass gets
            one more run of the method at the geometric mean of the two neighbouring betas whose runs end either
            side of it (<method>_bridge; bridge_beta), its snapshots scored on val as candidates (no dense pass of
            its own), and the picks are chosen again with them. How many (task, seed, method) meet the rule is
            counted from the records.
  val       every val prompt (607), 2 samples each (1214 completions a checkpoint): a method has about 150
            candidates, and the best of K noisy val means sits about sd * sqrt(2 ln K) above its true value (about
            0.04 in gold for K = 150, a val mean's sd being near 0.013 on sentiment); one sample would make it 0.06.
            That optimism is on val only: test scores each chosen checkpoint once.
  choice    at each budget B in 2, 4, 6, 8, 10, 12, 15, 20, 25, 30 nats, a method's checkpoint is its candidate
            (every snapshot of every beta, dense ones included, and SFT itself) with the best val gold among those
            whose val KL to SFT is at most B. Only those picks are scored on the test prompts (every one, 2 samples),
            one test job per method; best-of-N chooses its n the same way from one val and one test scoring.
  short     keeps VADER as it stands, decided before any of this sweep's `short` numbers, on the first frontier's
            val records and SFT samples only (experiments/report_axis.py, short_md): past 12 nats RLOO at beta 0.03
            writes one repeated word for almost every prompt, " l l" on seed 1337 (VADER's slang entry "l") but
            " great great" on seeds 1 and 2, which VADER scores higher; and best-of-64 by the RM already writes " l"
            far more often than SFT does, so the pairs do show it. A verifier that refused one-letter entries
            would leave the collapse onto a repeated strong word, and RLOO's lead, as they are: `short` reads as
            "RL's search finds the two-token maximum that the pairs only hint at", not as a lexicon quirk.
  readings  (experiments/report_axis.py) per task, method and budget the test gold of the pick, mean and sd over
            seeds with a 95% t-interval, and its KL; RLOO - DPO and best-of-N - DPO per budget, paired by seed,
            with the seeds ahead, also over the room (the better one's gain over SFT); each method's ceiling, its
            pick at 30 nats (the best val gold at any KL up to 30) and that pick's KL.
  cost      about 2 one-thread CPU-hours a sentiment or overlap block and 0.6 a short block: about 19 in all.

Records: results/frontier_v3/<task>_seed<seed>_<run>_val.jsonl for every snapshot of a run (<run> = dpo_b<beta>,
rloo_b<beta>, or either with _dense or _fill; dpo_bridge, rloo_bridge), <task>_seed<seed>_<method>_picks_test.jsonl
for the test scores of a method's picks (SFT always among them), _bon_<split> for best-of-N,
machine_<task>_seed<seed>.json, the label statistics, the training logs (logs/) and the wall time of every job
(timings.tsv).
"""
import math
import os
import shlex

import data_efficiency as DE  # read a record file
import frontier as F  # the runner, the SFT, pairs and RM commands

OUT, RES = 'out/frontier_v3', 'results/frontier_v3'
SEEDS = {'sentiment': (1337, 1, 2, 3, 4), 'short': (1337, 1, 2), 'overlap': (1337, 1, 2)}
BETAS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)
LR = 3e-4
LENGTH = {'dpo': '--epochs 3', 'rloo': '--max_iters 200'}  # the schedule: a dense rerun keeps it, so it is the same run
SNAPSHOTS = {'dpo': '--eval_interval 25 --snapshots --early_snapshots 5 60',
             'rloo': '--eval_interval 20 --snapshots --early_snapshots 2 40'}
BUDGETS = (2, 4, 6, 8, 10, 12, 15, 20, 25, 30)
BAND, AXIS, PER_BAND = 2, (2, 30), 2  # every 2-nat band from 2 to 30 (up to the highest KL reached) holds 2 snapshots
DENSE_MOST = 8  # val snapshots a dense rerun adds in one window at most
BRIDGE = 'BETA'  # the bridge run's beta in its command, until bridge_beta decides it
SCORE = {'val': '--samples 2', 'test': '--samples 2'}  # every prompt of the split
BEST_OF = 64


def train_cmd(method, t, seed, sft, beta):
    common = f'--beta {beta} --lr {LR} {LENGTH[method]} {SNAPSHOTS[method]} --seed {seed} --no_tqdm'
    if method == 'dpo':
        return f'python train_mle.py --loss dpo --prefs {t}/prefs.pt --ref {sft} {common}'
    return f'python train_rl.py --algo rloo --reward {t}/rm --init {sft} {common}'


def block_jobs(task, seed):
    """One (task, seed) block's own jobs: the machine record, best-of-N, and each method's jobs (method_jobs)."""
    t, o, sft = f'{F.OUT}/seed{seed}/{task}', f'{OUT}/seed{seed}/{task}', f'{F.OUT}/seed{seed}/sft'
    out = [machine_job(task, seed)]
    out += [(f'{o}/score_bon_{s}', [out[0][0], f'{t}/rm'], f'{score_cmd(task, seed, s)} {sft} --best_of {BEST_OF} --rm {t}/rm',
             (task, seed, 'bon', s)) for s in ('val', 'test')]
    for method in ('dpo', 'rloo'):
        out += method_jobs(task, seed, method, lambda beta: train_cmd(method, t, seed, sft, beta), o,
                           [out[0][0], trained_on(method, t)], [f'{o}/score_bon_val'])
    return out


def machine_job(task, seed):
    return (f'{OUT}/seed{seed}/{task}/machine', [], f'python experiments/machine.py --json {RES}/machine_{task}_seed{seed}.json', None)


def trained_on(method, t):
    """The frontier job a method's runs train from: DPO the labelled pairs, RLOO the RM."""
    return f'{t}/label' if method == 'dpo' else f'{t}/rm'


def score_cmd(task, seed, split):
    return f'python eval.py score --ref {F.OUT}/seed{seed}/sft --task {task} --split {split} --seed {seed} {SCORE[split]}'


def method_jobs(task, seed, method, cmd_of, o, deps, after, setting=None):
    """A method's jobs in a block, into folder o: its run at each beta (command cmd_of(beta)) with every snapshot
    scored on val, the dense reruns the band rule may ask for, and the test scoring of its picks, which comes
    after `after` too (best-of-N's val scores: SFT is a candidate). Records carry method `method` and setting
    b<beta> (or `setting`: an ablation's flags)."""
    out, vals, dense = [], [], []
    for beta in BETAS:
        run = f'{method}_b{beta}'
        out += [(f'{o}/{run}', deps, cmd_of(beta), None),
                (f'{o}/score_{run}_val', [f'{o}/{run}'], f"{score_cmd(task, seed, 'val')} SNAPSHOTS:{o}/{run}",
                 (task, seed, run, 'val', method, setting or f'b{beta}'))]
        vals.append(f'{o}/score_{run}_val')
    for beta in BETAS:
        run = f'{method}_b{beta}'
        out += [(f'{o}/{run}_dense', deps + vals, f'DENSE:{task}:{seed}:{run}:{cmd_of(beta)}', None),
                (f'{o}/score_{run}_dense_val', [f'{o}/{run}_dense'], f"{score_cmd(task, seed, 'val')} WINDOWS:{task}:{seed}:{run}",
                 (task, seed, f'{run}_dense', 'val', method, setting or f'b{beta}'))]
        dense.append(f'{o}/score_{run}_dense_val')
    fill = []
    for beta in BETAS:  # the band rule's second look, once every dense rerun is scored (after them, so a fresh
        run = f'{method}_b{beta}'  # clone of a complete block retrains no dense rerun to find there is nothing to fill)
        out.append((f'{o}/score_{run}_fill_val', dense,
                    f"{score_cmd(task, seed, 'val')} FILL:{task}:{seed}:{run}", (task, seed, f'{run}_fill', 'val', method, setting or f'b{beta}')))
        fill.append(f'{o}/score_{run}_fill_val')
    bridge = f'{o}/{method}_bridge'  # the band rule's third look (bridge_beta), at the beta it asks for
    out += [(bridge, deps + fill, f'BRIDGE:{task}:{seed}:{method}:{cmd_of(BRIDGE)}', None),
            (f'{o}/score_{method}_bridge_val', [bridge], f"{score_cmd(task, seed, 'val')} SNAPSHOTS:{bridge}",
             (task, seed, f'{method}_bridge', 'val', method, setting or 'bridge'))]
    # the picks' checkpoints too: in a fresh clone (no out/) a block cut short retrains its runs (bitwise) first
    trained = [f'{o}/{method}_b{b}{d}' for b in BETAS for d in ('', '_dense')] + [bridge]
    scored = vals + dense + fill + [f'{o}/score_{method}_bridge_val']
    out.append((f'{o}/score_{method}_picks_test', scored + trained + after,
                f"{score_cmd(task, seed, 'test')} PICKS:{task}:{seed}:{method}", (task, seed, f'{method}_picks', 'test', method, setting or 'picks')))
    return out


def jobs():
    """Block by block, sentiment's five seeds first; each block preceded by the frontier's SFT, labelling and RM
    it needs (skipped when done)."""
    out, seen = [], set()
    for task in F.TASKS:
        for seed in SEEDS[task]:
            for job in F.after_frontier(block_jobs(task, seed), RES, (seed,)):
                if job[0] not in seen:
                    seen.add(job[0])
                    out.append(job)
    return out


# ---- the protocol's rules, on records (lists of dicts as experiments/frontier.py writes them)

def pick(cands, budget):
    """The candidate with the best val gold among those with val KL at most the budget (SFT, at KL 0, is one)."""
    return max((r for r in cands if r['kl'] <= budget), key=lambda r: r['gold_reward'])


def thin_bands(kls, lo=AXIS[0], top=AXIS[1], width=BAND, need=PER_BAND):
    """The lower edges of the bands [b, b + width) from lo that lie below the highest KL reached (capped at top)
    and hold fewer than `need` of the KLs."""
    reach = min(max(kls, default=0.0), top)
    edges = range(lo, int(reach - width) + 1, width) if reach >= lo + width else []
    return [b for b in edges if sum(b <= k < b + width for k in kls) < need]


def path_of(rows):
    """A run's KL path: (step, KL) from SFT at step 0 through its snapshots in step order."""
    return [(0, 0.0)] + sorted((r['step'], r['kl']) for r in rows if r['method'] != 'human')


def crossings(path, band, width=BAND):
    """The windows (s1, s2) of consecutive snapshots more than a step apart whose KL path meets the band: the
    steps between them were not seen, and the KL passed through it there."""
    return [(s1, s2) for (s1, k1), (s2, k2) in zip(path, path[1:])
            if s2 - s1 > 1 and min(k1, k2) < band + width and max(k1, k2) >= band]


def dense_plan(runs):
    """{run: windows}: for each thin band of a method's runs (in the grid's order), every window of the first run
    that crosses it. `runs` maps each run to its val rows."""
    kls = [r['kl'] for rows in runs.values() for r in rows if r['method'] != 'human']
    plan = {}
    for band in thin_bands(kls):
        for run, rows in runs.items():
            windows = crossings(path_of(rows), band)
            if windows:
                plan[run] = sorted(set(plan.get(run, [])) | set(windows))
                break
    return plan


def window_steps(s1, s2, most=DENSE_MOST):
    """The steps between s1 and s2 scored on val: all of them, or `most` evenly spaced (a slow descent across a
    band, RLOO settling from a transient peak, can span a hundred steps)."""
    inner = range(s1 + 1, s2)
    if len(inner) <= most:
        return list(inner)
    return [inner[round(i * (len(inner) - 1) / (most - 1))] for i in range(most)]


def fill_plan(runs, dense):
    """{run: steps}: the band rule's second look, once the dense reruns are scored. For each band still thin over
    every val snapshot of the method (dense ones included), the steps not yet scored between two scored ones whose
    KL path crosses it, in the first run (in the grid's order) whose dense rerun kept them (every step up to the
    end of its last window): DPO at a small beta can move about a nat a step, past the dense pass's 8 steps a window.
    runs: {run: val rows}, dense: {run: its dense rerun's val rows}."""
    until = {run: max(s2 for _, s2 in w) for run, w in dense_plan(runs).items()}
    rows = {run: runs[run] + dense.get(run, []) for run in runs}
    kls = [r['kl'] for rs in rows.values() for r in rs if r['method'] != 'human']
    plan = {}
    for band in thin_bands(kls):
        for run, rs in rows.items():
            steps = {s for s1, s2 in crossings(path_of(rs), band) if s2 <= until.get(run, 0) for s in range(s1 + 1, s2)}
            if steps:
                plan[run] = sorted(set(plan.get(run, [])) | steps)
                break
    return plan


def bridge_beta(runs):
    """The band rule's third look, once the fill pass is scored: for the lowest band still thin over every val
    snapshot of the method, the two neighbouring betas of the grid whose runs end (their last snapshot) on either
    side of it, the larger beta's below the band's top and the smaller's at or above its bottom; the method is
    trained once more at their geometric mean (two significant figures), whose run levels off between theirs. None
    when no band is thin or no such pair exists. runs: {run: every val row of that beta, dense and fill ones too},
    in the grid's order."""
    kls = [r['kl'] for rs in runs.values() for r in rs if r['method'] != 'human']
    thin = thin_bands(kls)
    if not thin:
        return None
    ends = [(float(run.rsplit('_b', 1)[1]), max((r for r in rs if r['method'] != 'human'), key=lambda r: r['step'])['kl'])
            for run, rs in runs.items()]
    for (hi, end_hi), (lo, end_lo) in zip(ends, ends[1:]):
        if end_hi < thin[0] + BAND and end_lo >= thin[0]:
            return float(f'{math.sqrt(hi * lo):.2g}')
    return None


# ---- the runner's placeholders, filled once a job's dependencies are done

def method_runs(task, seed, method, res=RES):
    return {f'{method}_b{b}': DE.read(task, int(seed), f'{method}_b{b}', 'val', res) for b in BETAS}


def val_rows(task, seed, run, res=RES):
    """A run's val records, or none where it has not been scored (a pass the band rule did not ask for)."""
    path = F.record_path(res, task, int(seed), run, 'val')
    return DE.read(task, int(seed), run, 'val', res) if os.path.exists(path) else []


def scored_runs(task, seed, method, res=RES):
    """{run: val rows} for each beta of the grid, its dense and fill snapshots with it."""
    return {f'{method}_b{b}': [r for d in ('', '_dense', '_fill') for r in val_rows(task, seed, f'{method}_b{b}{d}', res)]
            for b in BETAS}


def candidates(task, seed, method, res=RES):
    """Every val row a method may pick: all its snapshots, dense, fill and bridge ones included, and SFT (best-of-1,
    from this sweep's records: an ablation has none of its own)."""
    rows = [r for rs in scored_runs(task, seed, method, res).values() for r in rs] + val_rows(task, seed, f'{method}_bridge', res)
    sft = next(r for r in DE.read(task, int(seed), 'bon', 'val', RES) if r['best_of'] == 1)
    return [r for r in rows if r['method'] != 'human'] + [sft]


def resolve(cmd, res=RES, out=None):
    """DENSE:task:seed:run:CMD is CMD with a snapshot at every step up to the run's last window (or nothing to do);
    WINDOWS:task:seed:run the dense rerun's snapshots inside its windows; FILL:task:seed:run those fill_plan adds (or
    nothing to do); BRIDGE:task:seed:method:CMD is CMD at bridge_beta's beta (or nothing to do); PICKS:task:seed:method
    the checkpoints the val choice picks at any budget, and SFT. res and out: the sweep's (or an ablation's) records
    and checkpoints."""
    if cmd.startswith('DENSE:'):
        task, seed, run, train = cmd[6:].split(':', 3)
        windows = dense_plan(method_runs(task, seed, run.rsplit('_b', 1)[0], res)).get(run)
        if not windows:
            return 'true'
        until = max(s2 for _, s2 in windows)
        snapshots = next(f for f in SNAPSHOTS.values() if f in train)  # an ablation's too: it is DPO's or RLOO's command
        return train.replace(snapshots, f'--eval_interval 1000 --snapshots --early_snapshots 1 {until}')
    if cmd.startswith('BRIDGE:'):
        task, seed, method, train = cmd[7:].split(':', 3)
        beta = bridge_beta(scored_runs(task, seed, method, res))
        return 'true' if beta is None else train.replace(f'--beta {BRIDGE} ', f'--beta {beta} ')
    if ' WINDOWS:' in cmd:
        score, spec = cmd.split(' WINDOWS:')
        task, seed, run = spec.split(':')
        windows = dense_plan(method_runs(task, seed, run.rsplit('_b', 1)[0], res)).get(run, [])
        d = f'{out or OUT}/seed{seed}/{task}/{run}_dense'
        steps = sorted({s for s1, s2 in windows for s in window_steps(s1, s2)})
        files = [f'{d}/step_{s}.pt' for s in steps if os.path.exists(f'{d}/step_{s}.pt')]
        return f"{score} {' '.join(files)}" if files else 'true'
    if ' FILL:' in cmd:
        score, spec = cmd.split(' FILL:')
        task, seed, run = spec.split(':')
        runs = method_runs(task, seed, run.rsplit('_b', 1)[0], res)
        dense = {r: val_rows(task, seed, f'{r}_dense', res) for r in runs}
        d = f'{out or OUT}/seed{seed}/{task}/{run}_dense'
        steps = fill_plan(runs, dense).get(run, [])
        return f"{score} {' '.join(f'{d}/step_{s}.pt' for s in steps)}" if steps else 'true'
    if ' PICKS:' in cmd:
        score, spec = cmd.split(' PICKS:')
        task, seed, method = spec.split(':')
        cands = candidates(task, seed, method, res)
        sft = cands[-1]['path']
        paths = sorted({pick(cands, b)['path'] for b in BUDGETS} - {sft})
        return f"{score} {sft} {' '.join(paths)}"
    return cmd


# ---- an ablation: a method of the grid with new flags, as a method of its own over the same protocol

def ablation(method, flags, name, task, seed=None):
    """DPO's or RLOO's commands with `flags` appended (argparse keeps the last value) as a new method NAME, run
    over the same betas, schedule, band rule and val choice, on the task's seeds (or one): each block's SFT, pairs,
    RM and best-of-N val are the sweep's, so the block must be scored that far, and its machine record is rerun and
    compared where out/ lacks the sweep's job (an ablation runs on its block's machine). Checkpoints: out/ablations_v3/NAME/, records:
    results/ablations_v3/NAME/."""
    F.check_new_name(name, F.job_names(jobs()), "frontier_v3's")
    if method not in LENGTH:
        raise SystemExit(f"--ablate {method}: a method of the grid, one of {', '.join(LENGTH)}")
    seeds = SEEDS[task] if seed is None else (seed,)
    if seed is not None and seed not in SEEDS[task]:
        raise SystemExit(f"--seed {seed}: not one of frontier_v3's {task} seeds ({', '.join(map(str, SEEDS[task]))})")
    try:
        words = shlex.join(shlex.split(flags))
    except ValueError as e:
        raise SystemExit(f'--flags {flags!r}: {e}')
    own = []
    for s in seeds:
        if not os.path.exists(F.record_path(RES, task, s, 'bon', 'val')):
            raise SystemExit(f'--seed {s}: frontier_v3 has not scored best-of-N on {task} seed {s} yet: run its block first')
        t, sft = f'{F.OUT}/seed{s}/{task}', f'{F.OUT}/seed{s}/sft'
        cmd_of = (lambda beta, t=t, s=s, sft=sft: f'{train_cmd(method, t, s, sft, beta)} {words}'.strip())
        own += [machine_job(task, s)] + method_jobs(task, s, name, cmd_of, f'out/ablations_v3/{name}/seed{s}/{task}',
                                                    [machine_job(task, s)[0], trained_on(method, t)], [], words)
    F.check_flags(own[1][2], flags)
    return F.after_frontier(own, f'results/ablations_v3/{name}', seeds)


def ablate(args):
    """--ablate METHOD (see ablation)."""
    own = ablation(args.ablate, args.flags, args.name, args.task, args.seed)
    F.check_name(args.name, shlex.join(shlex.split(args.flags)), args.resume, 'ablations_v3')
    res, out = f'results/ablations_v3/{args.name}', f'out/ablations_v3/{args.name}'
    return own, res, lambda cmd: resolve(cmd, res, out)


def block(task, seed):
    """--set_aside TASK SEED: the block's records, label statistics, logs and timings (task 'sft': the seed's SFT log)."""
    if task == 'sft':
        return [f'logs/seed{seed}_sft.jsonl'], lambda job: job == f'{F.OUT}/seed{seed}/sft'
    if task in SEEDS:
        return ([f'{task}_seed{seed}_', f'labels_{task}_seed{seed}.json', f'machine_{task}_seed{seed}.json',
                 f'logs/seed{seed}_{task}_'], lambda job: f'/seed{seed}/{task}/' in job)
    raise SystemExit(f"--set_aside: no block '{task}': one of sft, {', '.join(SEEDS)}")


if __name__ == '__main__':
    os.chdir(F.ROOT)
    F.main(jobs(), RES, __doc__, resolve, ablation=ablate, block=block)
