"""
What the runs cost and how fast the code is: README's costs, study_costs and performance blocks (the last also in
REPORT.md), from the timings the runners write and from bench/bench.py's record.
"""
import glob
import json
import os
import re
import statistics

import report_common as C

DEMO = os.path.join('results', 'demo', 'sentiment_seed1337')  # what `bash run.sh` copies (seed 1337, sentiment)
SWEEPS = {'frontier': 'the frontier', 'hypotheses': 'the hypotheses (H1, H3, H4)', 'size': 'RM size and policy size',
          'data_efficiency': 'data efficiency, first pass (retired)', 'data_efficiency_v2': 'data efficiency, second pass',
          'frontier_v3': 'the KL axis'}


def min_s(seconds):
    m, s = divmod(round(seconds), 60)
    return f'{m} min {s} s'


def costs_md(demo=DEMO):
    """The main job's wall time from the timings.tsv `bash run.sh` writes: `stage<TAB>seconds` lines, then `total`
    (this invocation) and `load` (/proc/loadavg at the end); a `cpus` line, if present, gives the machine."""
    path = os.path.join(C.ROOT, demo, 'timings.tsv')
    if not os.path.exists(path):
        return (f"The main job's wall time is not yet recorded: `bash run.sh` writes it, stage by stage, to "
                f"`{demo}/timings.tsv`.")
    rows = dict(line.rstrip('\n').split('\t', 1) for line in open(path) if '\t' in line)
    total, load, cpus = (rows.pop(k, None) for k in ('total', 'load', 'cpus'))
    task, seed = re.fullmatch(r'(.+)_seed(\d+)', os.path.basename(demo)).groups()
    fig = os.path.join(demo, 'frontier.png')
    where = f'a {cpus}-core CPU' if cpus else 'CPU'
    head = (f'`bash run.sh` took {min_s(float(total))} of wall time on {where}' if total else
            "`bash run.sh`'s whole wall time is not in its record")
    line = (f'{head} (seed {seed}, {task}; per stage: `{demo}/timings.tsv`)' +
            (f', its figure: `{fig}`' if os.path.exists(os.path.join(C.ROOT, fig)) else '') + '.')
    stages = ', '.join(f'{k} {float(v):.0f} s' for k, v in rows.items())
    old = os.path.join('results', 'retired', 'run_sentiment_seed1_timings.txt')  # the retired run.sh, on a quiet machine
    if total and 'sft' in rows and os.path.exists(os.path.join(C.ROOT, old)):
        was = dict(l.split() for l in open(os.path.join(C.ROOT, old)))
        k = float(rows['sft']) / float(was['sft'].rstrip('s'))
        line += (f" Machines differ: its SFT stage, the same command at another seed in the retired run.sh, took {float(rows['sft']):.0f} s "
                 f"here against {was['sft'].rstrip('s')} s in a quiet earlier run (`{old}`), {k:.1f}x as long; at that "
                 f"speed the whole job would take about {min_s(float(total) / k)}.")
    return line + (f'\nStages, wall seconds (some run side by side): {stages}' + (f'; load average at the end: {load}' if load else '') +
                   (". The total covers the last invocation only: a stage finished before is reused, not rerun."
                    if total else '.') if rows else '')


def kept(sweep, name):
    """The paths of a study's record `name` (timings.tsv, stale/timings.tsv, gpu): results/<sweep>/<name>, and
    results/retired/<sweep>_<name with '/' as '_'> where the study's or an attempt's records left the tree but what
    it spent stays counted."""
    paths = (os.path.join(C.RES, sweep, name), os.path.join(C.RES, 'retired', f"{sweep}_{name.replace('/', '_')}"))
    return [p for p in paths if os.path.exists(p)]


def timings(sweep):
    """[(job, wall seconds or None where unrecorded)] from the study's timings.tsv, in its order, then the jobs of
    attempts whose records were set aside (stale/ and superseded/, each with its timings.tsv) and that were redone
    or dropped since, as 'superseded:<job>' or 'stale:<job>': they spent CPU too. Each where kept() finds it."""
    def read(path):
        return [(name, None if x == 'unrecorded' else float(x))
                for name, x in (line.rstrip('\n').split('\t') for line in open(path))]
    now = [t for path in kept(sweep, 'timings.tsv') for t in read(path)]
    return now + [(f'{aside}:{n}', x) for aside in ('superseded', 'stale')
                  for path in kept(sweep, f'{aside}/timings.tsv') for n, x in read(path) if (n, x) not in now]


def own_timings(sweep):
    """A sweep's timings.tsv also lists the jobs of earlier sweeps it reuses (the frontier's SFT, pairs and runs):
    each job counts once, under the first sweep of SWEEPS that lists it with the same seconds (another time is
    another run: the job redone on another machine)."""
    earlier = set()
    for s in SWEEPS:
        if s == sweep:
            break
        earlier |= set(timings(s))
    return [(n, x) for n, x in timings(sweep) if (n, x) not in earlier]


def gpu_record(sweep):
    """What the study's gpu/ record says (kept() finds it), or None: the device (device.txt: nvidia-smi's header and
    line, torch, cores), and per runner call (runner_call*.log) its wall seconds, workers and the jobs it finished
    {job: seconds}."""
    d = next(iter(kept(sweep, 'gpu')), '')
    logs = sorted(glob.glob(os.path.join(d, 'runner_call*.log'))) if d else []
    if not logs:
        return None
    dev = open(os.path.join(d, 'device.txt')).read().splitlines() if os.path.exists(os.path.join(d, 'device.txt')) else []
    calls = []
    for path in logs:
        stamps, done, workers = [], {}, set()
        for line in open(path):
            m = re.match(r'(\d\d):(\d\d):(\d\d) (.*)', line)
            if not m:
                continue
            stamps.append(int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]))
            if d_ := re.fullmatch(r'done (\S+) in (\d+) s', m[4].strip()):
                done[d_[1]] = int(d_[2])
            if w := re.search(r'(\d+) workers', m[4]):
                workers.add(int(w[1]))
        wall = sum((b - a) % 86400 for a, b in zip(stamps, stamps[1:]))  # a call may run past midnight
        calls.append({'wall': wall, 'done': done, 'workers': max(workers, default=None)})
    return {'name': dev[1].split(',')[0].strip() if len(dev) > 1 else 'GPU',
            'torch': dev[2].strip() if len(dev) > 2 else None, 'cores': dev[3].strip() if len(dev) > 3 else None,
            'calls': calls, 'wall': sum(c['wall'] for c in calls),
            'workers': max((c['workers'] for c in calls if c['workers']), default=None)}


def device_split(sweep):
    """(jobs timed on the GPU, jobs run there but timed elsewhere, jobs never run there), from the sweep's own timings
    and its GPU runner logs: a job whose timings.tsv seconds differ from the runner's (by more than its 1 s rounding)
    was redone elsewhere, on the CPU."""
    g = gpu_record(sweep)
    on = {j: s for c in (g['calls'] if g else []) for j, s in c['done'].items()}
    own = own_timings(sweep)
    gpu = [(n, x) for n, x in own if n in on and x is not None and abs(x - on[n]) <= 1]
    redone = [(n, x) for n, x in own if n in on and (x is None or abs(x - on[n]) > 1)]
    return gpu, redone, [(n, x) for n, x in own if n not in on]


def study_costs_md(labels=SWEEPS):
    """labels: {sweep: its row's name}, in the table's order (report.py adds how far a running one is)."""
    L = ['| study | jobs | wall time of its jobs, summed | where it ran |', '|---|---|---|---|']
    for sweep, label in labels.items():
        own = own_timings(sweep)
        if not own:
            continue
        g = gpu_record(sweep)
        untimed = sum(x is None for _, x in own)
        hours = lambda js: sum(x for _, x in js if x is not None) / 3600  # noqa: E731
        spare = f' ({untimed} without a recorded time)' if untimed else ''
        if g is None:
            L.append(f'| {label} | {len(own)}{spare} | {hours(own):.1f} one-thread CPU-hours | CPU, one thread per job |')
            continue
        gpu, redone, cpu = device_split(sweep)
        L.append(f"| {label} | {len(own)}{spare} | {hours(gpu):.1f} h on the GPU ({len(gpu)} jobs, "
                 f"{g['workers']} at a time), {hours(redone + cpu):.1f} one-thread CPU-hours ({len(redone + cpu)} jobs) | "
                 f"{len(gpu) + len(redone)} jobs on one {g['name']} ({len(redone)} of them redone on CPU), "
                 f"{len(cpu)} on CPU only (the machine: `{os.path.relpath(kept(sweep, 'gpu')[0], C.ROOT)}/`) |")
    return ('\n'.join(L) + '\n\nFrom each study\'s `results/<study>/timings.tsv` (a job\'s wall seconds from its start to '
            'its DONE; a retired study\'s, and the attempts set aside and redone, in `results/retired/`); a job a study '
            'reuses from an earlier one (the frontier\'s SFT, pairs and runs) counts once, under the first. GPU hours '
            'are wall time under sharing, not one job alone.')


def bench_names():
    """The benchmarks' names in results/bench.md's first table (its rows in results/bench.json's order)."""
    path = os.path.join(C.RES, 'bench.md')
    names, inside = [], False
    for line in open(path) if os.path.exists(path) else []:
        if not line.startswith('|'):
            if inside:
                break
            continue
        cell = line.split('|')[1].strip()
        if cell == 'benchmark':
            inside = True
        elif inside and not cell.startswith('---'):
            names.append(cell)
    return names


def performance_md():
    path = os.path.join(C.RES, 'bench.json')
    if not os.path.exists(path):
        return 'Not measured yet: `python bench/bench.py` writes `results/bench.json` and `results/bench.md`.'
    b = json.load(open(path))
    meta, res = b['meta'], b['results']
    names = bench_names()
    names = dict(zip(res, names if len(names) == len(res) else res))
    num = lambda x: f'{x:.0f}' if x >= 1000 else f'{x:.1f}'  # noqa: E731
    peer = lambda r: re.sub(r'^(transformers|trl) \S+ ', '', r['peer_label'].split('(')[0].strip().rstrip(','))  # noqa: E731
    L = ['| work | repo | peer | repo / peer |', '|---|---|---|---|']
    for k, r in res.items():
        L.append(f"| {names[k]} | {num(r['repo_median'])} {r['unit']} | {num(r['peer_median'])} {r['unit']} "
                 f"({peer(r)}) | {r['ratio']:.2f}x |")
    steps = {k: r['steps_per_rep'] for k, r in res.items()}
    common = statistics.mode(steps.values())
    odd = ', '.join(f'{n} for {names[k].split(" (")[0]}' for k, n in steps.items() if n != common)
    loads = [r[k] for r in res.values() for k in ('load_before', 'load_after') if k in r]
    v = meta['versions']
    gpu = ('GPU: see `results/gpu.md`.' if os.path.exists(os.path.join(C.RES, 'gpu.md')) else
           "The GPU path (bf16 autocast, fused AdamW, `--compile`) has run sweep jobs (the data-efficiency row of the study costs) but "
           'its speed and MFU are not yet measured: `bash bench/gpu_check.sh` will record them in `results/gpu.md`.')
    return '\n'.join(L) + (
        f"\n\nMedians over {meta['reps']} repetitions of {common} steps per side ({odd})" if odd else
        f"\n\nMedians over {meta['reps']} repetitions of {common} steps per side") + (
        f", the two sides alternating step by step, {meta['threads']} thread per side, on {meta['machine']} with "
        f"{meta['cpus']} CPUs, torch {v['torch']}" + (f", 1-minute load average {min(loads):.2f}-{max(loads):.2f}"
                                                      if loads else '') +
        f"; measured {meta['date'].split()[0]}. The peer: transformers {v['transformers']} and trl {v['trl']} on the same "
        "model shape, the repo's weights copied in. `python bench/bench.py` made it; every repetition and what exactly "
        "is timed: `results/bench.md`."
        f"\n\n{waits_md()}\n\n{gpu}")


def waits_md():
    """What users wait on, beside the per-step figures: the main job and a study, and where their time goes."""
    path = os.path.join(C.ROOT, DEMO, 'timings.tsv')
    rows = dict(line.rstrip('\n').split('\t', 1) for line in open(path) if '\t' in line) if os.path.exists(path) else {}
    job = (f"the main job (`bash run.sh`) {min_s(float(rows['total']))} of wall time on a {rows.get('cpus', '?')}-core "
           f"CPU (`{DEMO}/timings.tsv`)" if 'total' in rows else "the main job's wall time is not yet recorded")
    hours = sum(x for _, x in own_timings('frontier') if x is not None) / 3600
    prof = os.path.exists(os.path.join(C.RES, 'profile.md'))
    return (f"What users wait on: {job}; the frontier study {hours:.1f} one-thread CPU-hours. " +
            ("Where that time goes, stage by stage and op by op: `results/profile.md` (`python bench/profile_stages.py`)."
             if prof else "`python bench/profile_stages.py` writes where that time goes to `results/profile.md`."))
