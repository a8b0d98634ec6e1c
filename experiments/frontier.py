"""
Gold reward against KL to SFT for every method, on three tasks and three seeds, driven by the stage commands
exactly as a user runs them. One SFT per seed (it does not depend on the task); per (task, seed): 4000 untied
preference pairs from SFT samples (ties dropped, prompts reused as needed, the labeller's tau set so labels
agree with the gold order on 93% of untied pairs), a global RM, then each method at two strengths, with
snapshots along training; every snapshot scored on the val and the test prompts.

  python experiments/frontier.py                # everything not yet done, two one-thread jobs side by side
  python experiments/frontier.py --hours 1.8    # start no new job after 1.8 hours (then run it again)
  python experiments/frontier.py --dry          # list the jobs still to do and their commands
  python experiments/frontier.py --dry --all    # every command of the sweep, done or not: what made the records

One run at a new setting (an ablation), drawn over the committed frontier by experiments/report.py:
  python experiments/frontier.py --ablate dpo_b0.1 --flags '--beta 0.3' --name dpo_beta0.3 --task sentiment --seed 1337
trains the frontier's dpo_b0.1 command with '--beta 0.3' appended (argparse keeps the last value) into
out/ablations/dpo_beta0.3/, scores its snapshots on val and test as the frontier does, and writes the records to
results/ablations/dpo_beta0.3/ with the method 'dpo_beta0.3'. The SFT and labels it needs are the frontier's,
rebuilt by the frontier's commands if out/ lacks them (their label statistics then go to the ablation's folder).
The stage checks the flags before any job runs; a name is new (not one of the frontier's runs or methods, not an
ablation already made) unless --resume continues that ablation, with the same flags.

Resumable: a finished job leaves a DONE file and is skipped; a killed training run continues with --resume. In
a fresh clone (no out/), a scoring job whose records are already in results/ is done (or one that finished with
nothing to score: its timings.tsv line), and a training run is redone only if one of its scores is missing.
Checkpoints go to out/frontier/ (not committed); each scoring job writes its records, one JSON line per
checkpoint, to results/frontier/<task>_seed<seed>_<run>_<split>.jsonl. experiments/report.py draws them.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT, RES = 'out/frontier', 'results/frontier'
SEEDS = (1337, 1, 2)
TASKS = ('sentiment', 'short', 'overlap')
PAIRS = '--n_pairs 4000 --n_val 500 --drop_ties --max_per_prompt 10 --agreement 0.93'
# Every trained method gets the same two strengths (the KL weight beta) at one learning rate, and its own
# length axis from snapshots: DPO every half epoch of 3, RLOO every 25 of 200 steps, online DPO every half
# round of 3 (a first pass with coarser snapshots left every trained method above 5 nats at its first one).
# 3e-4 is RLOO's tuned rate; DPO (and online DPO, which uses DPO's settings as in the paper) gets it too,
# since DPO at its likelihood-tuned 1e-4 barely moves from SFT in one epoch.
BETAS = (0.1, 0.03)
LR = 3e-4
SCORE = '--samples 2'  # all val (607) or test (610) prompts, 2 samples each
BEST_OF = 64


def jobs(seeds=SEEDS):
    """(name, dependencies, command or None, records to write or None), in the order they are wanted. Other seeds
    than the frontier's give the same jobs for them (a later sweep's SFT, pairs and RM at a new seed)."""
    out = []
    for seed in seeds:
        d = f'{OUT}/seed{seed}'
        out.append((f'{d}/sft', [], f'python train_mle.py --loss sft --seed {seed} --no_tqdm', None))
    for seed in seeds:  # seed-major: every task gets its first seed before any task gets its second
        for task in TASKS:
            d, sft = f'{OUT}/seed{seed}', f'{OUT}/seed{seed}/sft'
            t = f'{d}/{task}'
            prefs = f'{t}/prefs.pt'
            common = f'--seed {seed} --no_tqdm --snapshots'
            out.append((f'{t}/label', [sft], f'python eval.py label --policy {sft} --task {task} --seed {seed} '
                        f'{PAIRS} --out {prefs} --json {RES}/labels_{task}_seed{seed}.json', None))
            out.append((f'{t}/rm', [f'{t}/label'], f'python train_rm.py --prefs {prefs} --init {sft} --seed {seed} --no_tqdm', None))
            runs = {}
            for beta in BETAS:
                s = f'b{beta}'
                runs[f'dpo_{s}'] = ([f'{t}/label'], f'python train_mle.py --loss dpo --prefs {prefs} --ref {sft} '
                                    f'--beta {beta} --lr {LR} --epochs 3 --eval_interval 63 {common}')
                runs[f'rloo_{s}'] = ([f'{t}/rm'], f'python train_rl.py --algo rloo --reward {t}/rm --init {sft} '
                                     f'--beta {beta} --max_iters 200 --eval_interval 25 {common}')
                odpo = f'--reward {t}/rm --ref {sft} --beta {beta} --lr {LR} --rounds 3 --n_prompts 500 --eval_interval 8'
                runs[f'odpo_sft_{s}'] = ([f'{t}/rm'], f'python train_rl.py --algo online_dpo --init {sft} {odpo} {common}')
                runs[f'odpo_dpo_{s}'] = ([f'{t}/rm', f'{t}/dpo_{s}'],
                                         f'python train_rl.py --algo online_dpo --init {t}/dpo_{s} {odpo} {common}')
            for name, (deps, cmd) in runs.items():
                out.append((f'{t}/{name}', deps, cmd, None))
            for split in ('val', 'test'):
                score = f'python eval.py score --ref {sft} --task {task} --split {split} --seed {seed} {SCORE}'
                out.append((f'{t}/score_bon_{split}', [f'{t}/rm'], f'{score} {sft} --best_of {BEST_OF} --rm {t}/rm',
                            (task, seed, 'bon', split)))
                for name in runs:
                    out.append((f'{t}/score_{name}_{split}', [f'{t}/{name}'], f'{score} SNAPSHOTS:{t}/{name}',
                                (task, seed, name, split)))
    return out


def ablation(run, flags, name, task, seed):
    """The frontier's run `run` of (task, seed) with `flags` appended to its command, trained into
    out/ablations/NAME and scored on both splits exactly as the frontier's run is; its records carry method NAME.
    Refuses, with one line, a name the frontier's records use, a seed or run the frontier lacks, and flags that the
    stage's own parse_args refuses."""
    check_new_name(name, job_names(jobs()), "the frontier's")
    if seed not in SEEDS:
        raise SystemExit(f"--seed {seed}: not one of the frontier's seeds ({', '.join(map(str, SEEDS))})")
    t = f'{OUT}/seed{seed}/{task}'
    frontier = {n: (deps, cmd) for n, deps, cmd, rec in jobs() if rec is None or n.startswith(f'{t}/score_{run}_')}
    runs = sorted({rec[2] for *_, rec in jobs() if rec and rec[:2] == (task, seed)} - {'bon'})
    if run not in runs:  # a run the frontier trains and scores (not SFT, the labels, the RM or best-of-N)
        raise SystemExit(f"--ablate {run}: not a training run of the frontier; one of {', '.join(runs)}")
    try:
        words = shlex.split(flags)
    except ValueError as e:
        raise SystemExit(f'--flags {flags!r}: {e}')
    deps, cmd = frontier[f'{t}/{run}']
    cmd = f'{cmd} {shlex.join(words)}' if words else cmd
    check_flags(cmd, flags)
    d = f'out/ablations/{name}/seed{seed}/{task}'
    own = [(f'{d}/{name}', deps, cmd, None)]
    for split in ('val', 'test'):
        score = frontier[f'{t}/score_{run}_{split}'][1].replace(f'SNAPSHOTS:{t}/{run}', f'SNAPSHOTS:{d}/{name}')
        own.append((f'{d}/score_{split}', [f'{d}/{name}'], score, (task, seed, name, split, name, shlex.join(words))))
    return after_frontier(own, f'results/ablations/{name}')


def check_new_name(name, taken, whose):
    """An ablation's name is a plain identifier (it names a folder and a method) that `taken` (job_names of the sweep
    it builds on) does not hold: records under a name the sweep uses would be drawn and tabled as its own."""
    if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_.]*', name) or '..' in name:
        raise SystemExit(f'--name {name!r}: a letter, then letters, digits, _ and . (it names a folder and a method)')
    if name in taken:
        raise SystemExit(f"--name {name}: {whose} records already use that name; pick another")


def job_names(all_jobs):
    """Every name a sweep's jobs, runs and record methods go by."""
    names = {'best_of_n', 'human'}  # methods of records that no job is named after
    for name, _, _, rec in all_jobs:
        names.add(name.rsplit('/', 1)[1])
        if rec:
            names |= {rec[2], rec[2].rsplit('_', 1)[0], *rec[4:5]}  # the run, and the method records() reads from it
    return names


def check_flags(cmd, flags):
    """A training command checked by its stage's own parse_args (its flags, then every check that needs no file),
    in a process that writes nothing (not even bytecode): a bad flag or value is one line, before any job runs."""
    argv = shlex.split(cmd)  # python train_X.py ...
    code = (f'import sys; sys.argv[0] = {argv[1]!r}; import model as M, {argv[1][:-3]} as stage; '
            'M.main_guard(lambda: stage.parse_args(sys.argv[1:]))')
    r = subprocess.run([sys.executable, '-B', '-c', code, *argv[2:]], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, **JOB_ENV})
    if r.returncode != 0:  # its last line says why: argparse's usage comes first, main_guard's line alone
        why = r.stderr.strip().splitlines()[-1].removeprefix('error: ') if r.stderr.strip() else 'refused'
        raise SystemExit(f'--flags {flags!r}: {why}')


def check_name(name, setting, resume, where='ablations'):
    """An ablation's name is its own: a second ablation under it would mix two settings' records in one method.
    --resume continues the one there (results/WHERE/NAME, out/WHERE/NAME), with the flags it was made with."""
    made = [p for p in (f'results/{where}/{name}', f'out/{where}/{name}') if os.path.isdir(p)]
    if made and not resume:
        raise SystemExit(f'--name {name}: an ablation of that name exists ({made[0]}): pass --resume to continue it, '
                         'or pick another name')
    if resume and not made:
        raise SystemExit(f'--resume: there is no ablation {name} to continue')
    settings = {r['setting'] for path in glob.glob(f'results/{where}/{name}/*.jsonl') for line in open(path)
                for r in [json.loads(line)] if r['method'] == name}
    if settings - {setting}:
        made_with = ' and '.join(map(repr, sorted(settings)))
        raise SystemExit(f"--resume: ablation {name}'s records were made with --flags {made_with}, not {setting!r}")


def after_frontier(own, res, seeds=SEEDS):
    """A sweep built on the frontier's checkpoints: the frontier's training jobs that `own` needs (and what those
    need; skipped when done), then `own`; for seeds beyond the frontier's, the same commands at those seeds.
    Rebuilt labels report into the sweep's folder res: a committed frontier record is never overwritten."""
    frontier = {name: job for name, *job in jobs(SEEDS + tuple(s for s in seeds if s not in SEEDS))}
    todo, wanted = [d for _, deps, _, _ in own for d in deps], set()
    while todo:
        name = todo.pop()
        if name in frontier and name not in wanted:
            wanted.add(name)
            todo += frontier[name][0]
    return [(name, deps, cmd.replace(f' --json {RES}/', f' --json {res}/'), rec)
            for name, (deps, cmd, rec) in frontier.items() if name in wanted and rec is None] + own


# The runner below is shared with experiments/data_efficiency.py: a sweep is its job list (checkpoints go to
# each job's own dir) and its results dir (records, training logs, timings). A command is a plain argv line (no
# shell: no user text reaches one); a placeholder in it (SNAPSHOTS:, and the sweeps' resolve() ones) is filled in
# once the job's dependencies are done.
JOB_ENV = {'OMP_NUM_THREADS': '1'}  # one thread per job: the jobs run side by side, one per core
PLACEHOLDER = re.compile(r'(?:^| )([A-Z]+):')


def record_path(res, task, seed, run, split, *method_setting):
    return f'{res}/{task}_seed{seed}_{run}_{split}.jsonl'


def done(name, res, rec=None):
    """A job left its DONE file; a scoring job is also done when its records are in results/ (checkpoints are
    not committed, so a fresh clone has only those), or when it has a line in <res>/timings.tsv and no records: it
    finished with nothing to score (a placeholder the band rule left empty), and a fresh clone must not retrain
    what it depends on to learn that again. Redoing a scoring job means removing its records and its line."""
    if os.path.exists(f'{name}/DONE'):
        return True
    if rec is None:
        return False
    timings = f'{res}/timings.tsv'
    return os.path.exists(record_path(res, *rec)) or (
        os.path.exists(timings) and any(line.split('\t')[0] == name for line in open(timings)))


def still_needed(all_jobs, res):
    """Every scoring job not done, and every job not done that a needed job depends on (walked backwards: a
    job comes after what it depends on). A training run whose scores are all in results/ is not redone."""
    needed = set()
    for name, _, _, rec in reversed(all_jobs):
        if not done(name, res, rec) and (rec is not None or any(name in deps for n, deps, _, _ in all_jobs if n in needed)):
            needed.add(name)
    return [j for j in all_jobs if j[0] in needed]


def write_timings(all_jobs, res):
    """<res>/timings.tsv: the wall seconds of every finished job (one thread each), from its DONE; the lines of
    jobs finished in an earlier clone are kept."""
    path = f'{res}/timings.tsv'
    seconds = dict(line.rstrip('\n').split('\t') for line in open(path)) if os.path.exists(path) else {}
    for name, *_ in all_jobs:
        if os.path.exists(f'{name}/DONE'):
            last = open(f'{name}/DONE').read().split()
            seconds[name] = last[-2] if last[-1] == 's' else 'unrecorded'
    os.makedirs(res, exist_ok=True)
    with open(path, 'w') as f:
        f.writelines(f'{name}\t{seconds[name]}\n' for name, *_ in all_jobs if name in seconds)


def records(eval_json, task, seed, run, split, *method_setting):
    """One record per scored checkpoint, the run's method and setting spelled out (an ablation names its own)."""
    d = json.load(open(eval_json))
    rows = []
    for name, r in d['policies'].items():
        if r['stage'] == 'human':
            method, setting = 'human', None
        elif method_setting:
            method, setting = method_setting
        elif run.endswith('bon'):  # bon, or wide_bon (experiments/hypotheses.py)
            if 'best_of' not in r:
                continue  # plain SFT samples: best-of-1 is the same thing, from the best-of samples
            method, setting = 'best_of_n', f"n={r['best_of']}"
        else:
            method, setting = run.rsplit('_', 1)
        keep = ('gold_reward', 'gold_reward_ci', 'win_vs_human', 'win_vs_human_ci', 'win_vs_ref', 'win_vs_ref_ci',
                'kl', 'kl_ci', 'length', 'eos_rate', 'distinct_2', 'n_completions', 'step', 'best_of', 'rm',
                'top_words', 'examples', 'path')
        rows.append({'task': task, 'seed': seed, 'method': method, 'setting': setting, 'run': run, 'name': name,
                     'split': split, **{k: r.get(k) for k in keep}})
    return rows


def agrees(old, new):
    """A rerun (a fresh clone rebuilds out/) writes what the first run wrote, throughput and time shares aside:
    every stage is bitwise reproducible on one machine, but another CPU's kernels round differently and the
    checkpoint drifts."""
    def strip(text):
        return re.sub(r'"\w+_(per_s|share)": [-+.\deE]+', '', text)
    return strip(old) == strip(new)


def run_job(name, cmd, rec, log, res, resolve=None):
    """Run one job; resolve(cmd), if given, fills in what is only known once the job's dependencies are done.
    A job that rewrites a committed file (its training log in res, its label statistics, a machine record: any
    --json) must agree with it: records made from the earlier run would otherwise sit beside records made from this
    one. It then fails, leaving the file."""
    os.makedirs(name, exist_ok=True)
    try:
        cmd = resolve(cmd) if resolve else cmd
    except ValueError as e:
        log(f'FAILED {name}: {e}')
        return False
    rewrites = {p: p for p in re.findall(r'--json (\S+)', cmd)}  # label statistics, a machine record
    if cmd.startswith('python train_'):  # the training log travels with the records (checkpoints do not)
        seed, rest = name.split('/seed', 1)[1].split('/', 1)
        rewrites[f"{res}/logs/seed{seed}_{rest.replace('/', '_')}.jsonl"] = f'{name}/log.jsonl'
    before = {p: open(p).read() for p in rewrites if os.path.exists(p)}
    cmd, rec = full_command(name, cmd, rec)
    js = f'{name}/eval.json'
    t0 = time.time()
    with open(f'{name}/stdout.txt', 'w') as f:
        r = subprocess.run(shlex.split(cmd), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                           env={**os.environ, **JOB_ENV})
    if r.returncode != 0:
        log(f'FAILED ({r.returncode}) {name}: see {name}/stdout.txt')
        return False
    for path, old in before.items():
        new = open(rewrites[path]).read()
        if not agrees(old, new):
            with open(f'{name}/rerun_{os.path.basename(path)}', 'w') as f:
                f.write(new)
            with open(path, 'w') as f:
                f.write(old)
            log(f'FAILED {name}: this run disagrees with {path}, which earlier records were made from (another '
                f'machine?): set those records aside (--set_aside BLOCK SEED), then rerun')
            return False
    for path, made in rewrites.items():
        if made != path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copy(made, path)
    if rec:
        rows = records(js, *rec)
        os.makedirs(res, exist_ok=True)
        path = record_path(res, *rec)
        with open(path + '.tmp', 'w') as f:
            f.writelines(json.dumps(row) + '\n' for row in rows)
        os.replace(path + '.tmp', path)
    with open(f'{name}/DONE', 'w') as f:
        f.write(f'{cmd}\n{time.time() - t0:.1f} s\n')
    log(f'done {name} in {time.time() - t0:.0f} s')
    return True


def full_command(name, cmd, rec):
    """A job's command as run_job runs it, once resolve() has filled in what its dependencies decide: a training
    run gets its --out_dir (continuing a checkpoint there), a scoring job its run's snapshots and its --json.
    Returns (command, rec): rec None where nothing is left to score."""
    if cmd == 'true':  # resolved to nothing to do (a dense rerun the band rule does not ask for): no records
        rec = None
    if cmd.startswith('python train_'):  # a killed run continues from its last checkpoint
        cmd += f' --out_dir {name} ' + ('--resume' if os.path.exists(f'{name}/ckpt.pt') else '--overwrite')
    if rec and 'SNAPSHOTS:' in cmd:  # every snapshot of the run, in step order
        run_dir = cmd.split('SNAPSHOTS:')[1]
        snaps = sorted((f for f in os.listdir(run_dir) if f.startswith('step_')), key=lambda f: int(f[5:-3]))
        if not snaps:  # a run that kept none (data_efficiency_v2: a dense rerun not needed) has nothing to score
            cmd, rec = 'true', None
        cmd = cmd.replace(f'SNAPSHOTS:{run_dir}', ' '.join(f'{run_dir}/{f}' for f in snaps))
    return cmd + (f' --json {name}/eval.json' if rec else ''), rec


def dry_lines(todo, all_jobs, res, resolve):
    """--dry: each job's command as run_job would run it now, one shell line each with the job's name as a comment:
    what a done job ran (its DONE file), or what is known now; a placeholder its dependencies decide is said so."""
    env = ' '.join(f'{k}={v}' for k, v in JOB_ENV.items())
    recs = {name: rec for name, _, _, rec in all_jobs}
    for name, deps, cmd, rec in todo:
        if os.path.exists(f'{name}/DONE'):
            yield f'{env} {open(f"{name}/DONE").readline().strip()}  # {name}: done'
        elif all(done(d, res, recs.get(d)) for d in deps) or not PLACEHOLDER.search(cmd):
            try:
                line, _ = full_command(name, resolve(cmd) if resolve else cmd, rec)
            except (ValueError, OSError) as e:
                yield f'# {name}: cannot run: {e}'
                continue
            yield f'{env} {line}  # {name}'
        else:
            yield f'{env} {cmd}  # {name}: {PLACEHOLDER.search(cmd)[1]}: resolved when its dependencies are done'


def print_lines(lines):
    """Print, and end quietly when the reader has gone (`--dry --all | head`)."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit would fail again
        sys.exit(1)


def stale_moves(res, files):
    """(file, where set_aside moves it) for each file under res whose path (relative to res) starts with one of
    `files`: the same path under <res>/stale/, numbered (.2, .3, ... before its extension) where an earlier
    set-aside left a file of that name, so that both are kept."""
    moves = []
    for f in sorted(glob.glob(f'{res}/**', recursive=True)):
        if '/stale/' in f or not os.path.isfile(f) or not any(os.path.relpath(f, res).startswith(p) for p in files):
            continue
        dest = f.replace(res, f'{res}/stale', 1)
        base, ext = os.path.splitext(dest)
        n = 1
        while os.path.exists(dest):
            n += 1
            dest = f'{base}.{n}{ext}'
        moves.append((f, dest))
    return moves


def set_aside(res, files, is_job):
    """Move the files under res whose path (relative to res) starts with one of `files`, and the timings.tsv lines
    of the jobs is_job(name) picks, to <res>/stale/: records made from checkpoints another machine trained, to be
    redone whole here (run_job stops a rerun that disagrees with them). report.timings still counts their CPU."""
    moves = stale_moves(res, files)
    for f, dest in moves:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(f, dest)
    lines = open(f'{res}/timings.tsv').readlines()
    os.makedirs(f'{res}/stale', exist_ok=True)
    with open(f'{res}/stale/timings.tsv', 'a') as f:
        f.writelines(line for line in lines if is_job(line.split('\t')[0]))
    with open(f'{res}/timings.tsv', 'w') as f:  # the jobs are redone: their new times replace these
        f.writelines(line for line in lines if not is_job(line.split('\t')[0]))
    return len(moves)


def main(all_jobs, res, doc=__doc__, resolve=None, ablation=None, block=None):
    """The command line of a sweep: all_jobs into res. ablation(args), if given, turns --ablate ... into the jobs,
    results folder and resolve() of one ablation; block(name, seed) says what --set_aside moves."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--workers', type=int, default=2, help='jobs side by side, one thread each')
    ap.add_argument('--hours', type=float, default=1.8, help='start no new job after this long')
    ap.add_argument('--dry', action='store_true', help='print the commands of the jobs still to do; change nothing')
    ap.add_argument('--all', action='store_true', help='with --dry: every job of the sweep, done or not')
    if ablation:
        g = ap.add_argument_group('one ablation: a run or method of the sweep at a new setting (see above)')
        g.add_argument('--ablate', metavar='RUN', help='what the ablation starts from (see above)')
        g.add_argument('--flags', default='', help="stage flags appended to its command, e.g. '--beta 0.3'")
        g.add_argument('--name', help="the ablation's name: its method in the records and figures")
        g.add_argument('--resume', action='store_true', help='continue the ablation of that name, with its flags')
        g.add_argument('--task', default='sentiment', choices=TASKS)
        g.add_argument('--seed', type=int, default=None, help='(see above)')
    if block:
        ap.add_argument('--set_aside', nargs=2, metavar=('BLOCK', 'SEED'),
                        help="move a block's records, logs and timings to stale/, to redo it whole (see above)")
    args = ap.parse_args()
    os.chdir(ROOT)
    if block and args.set_aside:
        name, seed = args.set_aside
        if not seed.isdigit():
            raise SystemExit(f'--set_aside: the seed is a number, not {seed!r}')
        files, is_job = block(name, seed)
        if args.dry:
            lines = open(f'{res}/timings.tsv').readlines() if os.path.exists(f'{res}/timings.tsv') else []
            timed = [line.split('\t')[0] for line in lines if is_job(line.split('\t')[0])]
            print_lines([f'would move {f} to {dest}' for f, dest in stale_moves(res, files)] +
                        [f'would move the timings.tsv line of {job} to {res}/stale/timings.tsv' for job in timed])
            return
        n = set_aside(res, files, is_job)
        print(f'set aside {n} files of {name} seed {seed} in {res}/stale/')
        return
    if ablation and args.ablate:
        if not args.name:
            raise SystemExit('--ablate needs --name')
        all_jobs, res, resolve = ablation(args)
    elif ablation and (args.name or args.flags or args.resume or args.seed is not None):
        raise SystemExit('--name, --flags, --resume and --seed go with --ablate')
    todo = all_jobs if args.dry and args.all else still_needed(all_jobs, res)
    if args.dry:
        print_lines([*dry_lines(todo, all_jobs, res, resolve), f"# {len(todo)} jobs{'' if args.all else ' to do'}"])
        return
    write_timings(all_jobs, res)
    recs = {name: rec for name, _, _, rec in all_jobs}  # a scoring job can be a dependency (the val choice)
    lock, failed, running = threading.Condition(), set(), set()
    deadline = time.time() + args.hours * 3600

    def log(msg):
        print(f'{time.strftime("%H:%M:%S")} {msg}', flush=True)

    def worker():
        while True:
            with lock:
                while True:
                    if time.time() > deadline:
                        return
                    blocked = [j for j in todo if any(d in failed for d in j[1])]
                    for j in blocked:  # a failed dependency: the job cannot run
                        todo.remove(j)
                        failed.add(j[0])
                    ready = [j for j in todo if all(done(d, res, recs.get(d)) for d in j[1])]
                    if ready:
                        job = ready[0]
                        todo.remove(job)
                        running.add(job[0])
                        break
                    if not running and not ready:
                        return
                    lock.wait(60)
            ok = run_job(job[0], job[2], job[3], log, res, resolve)
            with lock:
                write_timings(all_jobs, res)
                running.discard(job[0])
                if not ok:
                    failed.add(job[0])
                lock.notify_all()

    log(f'{len(todo)} jobs to do, {args.workers} workers, until {time.strftime("%H:%M", time.localtime(deadline))}')
    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    left = still_needed(all_jobs, res)
    log(f'stopped: {len(left)} jobs left' + (f', failed: {sorted(failed)}' if failed else ''))
    sys.exit(1 if failed else 0)


def ablate(args):
    """--ablate RUN: one run of the frontier at a new setting, on one seed (1337 unless --seed says)."""
    own = ablation(args.ablate, args.flags, args.name, args.task, 1337 if args.seed is None else args.seed)
    check_name(args.name, shlex.join(shlex.split(args.flags)), args.resume)
    return own, f'results/ablations/{args.name}', None


if __name__ == '__main__':
    main(jobs(), RES, ablation=ablate)
