"""
The sections of bench/gpu_check.sh (run that, not this): every piece is a subprocess under `timeout`, bounded by
its own cap and by what is left of the whole run's budget, so one failure or hang costs only its own section;
each section records pass / FAIL / timed out / skipped, and one markdown report is written at the end.

  python bench/gpu_check.py gpu|cpu --report PATH --work DIR     # what gpu_check.sh runs
  python bench/gpu_check.py _checks gpu|cpu --json PATH           # internal: the in-process device checks

gpu: the real shapes (the demo shape = train_mle.py's defaults, and GPT-2 small) and a few dozen steps each, in
under 5 minutes on one GPU. cpu: the same pieces at toy sizes on the CPU (gloo for torchrun, no --compile), in
under 3 minutes on 2 cores, so CI keeps the script itself working.
"""
import argparse
import glob
import json
import math
import os
import platform
import re
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
SEED = ['--seed', '1337', '--no_tqdm', '--overwrite']
G2 = ['--vocab_size', '50257', '--n_layer', '12', '--n_head', '12', '--n_embd', '768', '--block_size', '1024']
TOY = ['--n_layer', '2', '--n_head', '2', '--n_embd', '64', '--block_size', '64', '--batch_size', '8']

# Per mode: the run's budget (s), the "big" shape (GPT-2 small on the GPU, a toy one on the CPU) and steps.
# Steps come as (max_iters, eval_interval): where a throughput is read, a log row at the midpoint and one at the
# end, so the last row's leaves out the warm-up (and torch.compile's compilation) that the first row carries.
PLAN = {
    'gpu': dict(budget=260, big=G2, big_name='GPT-2 small (12 layers, 12 heads, 768 wide, context 1024, vocab 50257)',
                sft=(40, 20), demo_sft=(30, 15), rm=(6, 3), dpo=(20, 10), rloo=(10, 5), ddp=(4, 2), pairs=(64, 32),
                demo_batch=[], compile=True),
    'cpu': dict(budget=150, big=TOY, big_name='toy (2 layers, 2 heads, 64 wide, context 64, vocab 4096)',
                sft=(10, 5), demo_sft=(4, 4), rm=(4, 4), dpo=(6, 3), rloo=(4, 2), ddp=(2, 2), pairs=(32, 16),
                demo_batch=['--batch_size', '8'], compile=False),
}
# GPU_CHECK_SCALE multiplies the budget and every cap: 2 where a GPU lease has 10 minutes to spare (run.sh at demo
# size then gets more time), 3 on a CPU machine loaded by other jobs (where `import torch` alone can take 10 s).
SCALE = float(os.environ.get('GPU_CHECK_SCALE', 1))
# Caps (s) per piece; run.sh goes last and gets whatever the budget has left.
CAP = {'gpu': dict(tests=75, checks=60, sft=60, sft_compile=120, stage=45, ddp=45),
       'cpu': dict(checks=50, sft=50, sft_compile=0, stage=40, ddp=40)}  # sft: its eval reads the whole val split


# -----------------------------------------------------------------------------
# Running pieces

class Runner:
    def __init__(self, mode, work):
        self.mode, self.work = mode, work
        self.deadline = time.time() + SCALE * PLAN[mode]['budget']
        self.pieces = {}  # name -> result dict, in start order

    def side_by_side(self, *fns):
        """Call each fn (a chain of pieces). gpu: one after the other, so every timing is clean. cpu: side by side
        in threads, two processes at a time on the 2 cores (a piece is mostly single-threaded start-up; its
        numbers are toy numbers anyway)."""
        if self.mode == 'gpu':
            for fn in fns:
                fn()
            return
        ts = [threading.Thread(target=fn) for fn in fns]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def run(self, name, argv, cap, env=None, needs=()):
        """argv in the repo root under `timeout` (which signals the whole process group: run.sh's and torchrun's
        children too), for at most min(cap, what the budget has left) seconds. Output goes to WORK/name.log."""
        log = os.path.join(self.work, f'{name}.log')
        self.pieces[name] = None
        left = int(self.deadline - time.time())
        missing = [n for n in needs if (self.pieces.get(n) or {}).get('status') != 'pass']
        if missing or left < 5:
            r = {'status': 'skipped', 'wall': 0.0, 'limit': 0, 'log': log,
                 'note': f"needs {', '.join(missing)}" if missing else 'the budget was spent'}
        else:
            limit = min(int(SCALE * cap), left)
            t0 = time.time()
            with open(log, 'w') as f:
                f.write(f"$ {' '.join(argv)}\n")
                f.flush()
                p = subprocess.run(['timeout', '-k', '10', str(limit), *argv], cwd=ROOT, stdout=f,
                                   stderr=subprocess.STDOUT, env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})})
            wall = time.time() - t0
            # 124: timed out; 137 / -9: still running 10 s after SIGTERM, killed (timeout kills its own group)
            status = 'pass' if p.returncode == 0 else 'timed out' if p.returncode in (124, 137, -9) else 'FAIL'
            r = {'status': status, 'rc': p.returncode, 'wall': wall, 'limit': limit, 'log': log, 'note': ''}
        self.pieces[name] = r
        print(f"[gpu_check] {name}: {r['status']} ({r['wall']:.0f} s{', ' + r['note'] if r['note'] else ''})",
              flush=True)
        return r


def tail(path, n=12):
    try:
        with open(path, errors='replace') as f:
            lines = f.read().splitlines()
    except OSError:
        return '(no log)'
    return '\n'.join(lines[-n:])


def rows(out_dir):
    try:
        with open(os.path.join(out_dir, 'log.jsonl')) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def fmt(x, spec='.1f'):
    return '-' if x is None else format(x, spec)


def status_cell(r):
    s = r['status']
    if s == 'timed out':
        return f"timed out ({r['limit']} s)"
    if s == 'skipped':
        return f"skipped ({r['note']})"
    return s if s == 'pass' else f"FAIL (rc {r['rc']})"


def failure_block(rs):
    """The log tail of each piece that did not pass (skipped ones have no log)."""
    out = []
    for name, r in rs:
        if r['status'] not in ('pass', 'skipped'):
            out.append(f"`{name}` {status_cell(r)}, last lines of its log:\n\n```\n{tail(r['log'])}\n```")
    return '\n\n'.join(out)


# -----------------------------------------------------------------------------
# Sections

def section_device(mode):
    import torch
    smi = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
                         capture_output=True, text=True) if _which('nvidia-smi') else None
    smi_line = smi.stdout.strip() if smi is not None and smi.returncode == 0 else 'nvidia-smi: not available'
    cuda = torch.cuda.is_available()
    rows_ = [('mode', mode), ('nvidia-smi (name, driver, memory)', smi_line),
             ('torch', torch.__version__), ('CUDA (torch build)', torch.version.cuda or 'none (CPU build)'),
             ('torch sees a GPU', f"{torch.cuda.get_device_name()} (capability {torch.cuda.get_device_capability()})"
              if cuda else 'no'),
             ('NCCL (torch)', str(torch.cuda.nccl.version()) if cuda else '-'),
             ('CPUs (os.cpu_count / usable)', f"{os.cpu_count()} / {len(os.sched_getaffinity(0))}"),
             ('Python, machine', f"{platform.python_version()}, {platform.machine()}"),
             ('OMP_NUM_THREADS', os.environ.get('OMP_NUM_THREADS', 'unset'))]
    ok = cuda or mode == 'cpu'
    md = '| | |\n|---|---|\n' + '\n'.join(f'| {k} | {v} |' for k, v in rows_)
    if not ok:
        md += '\n\nNo CUDA device visible to torch: the GPU sections below ran on the CPU or failed.'
    return ('pass' if ok else 'FAIL'), md


def _which(cmd):
    return any(os.access(os.path.join(d, cmd), os.X_OK) for d in os.environ.get('PATH', '').split(os.pathsep))


def tests_using_device():
    """Test files that name the device ('cuda', get_device), and those that run a training stage, which takes
    --device auto (no test passes --device to one) and so runs on CUDA where there is a GPU."""
    named, stages = [], []
    for f in sorted(glob.glob(os.path.join(ROOT, 'tests', 'test_*.py'))):
        with open(f) as fh:
            text = fh.read()
        (named if re.search(r'cuda|get_device', text) else stages if re.search(r'train_(mle|rl|rm)', text)
         else []).append(os.path.relpath(f, ROOT))
    return named, stages


# On the GPU: the files that name the device, else these two of the stage-running ones, the quick ones (22 s on
# the CPU): a tiny SFT run whose loss must fall, in-process RLOO and online DPO that must raise a planted reward.
QUICK_STAGE_TESTS = ['tests/test_model.py', 'tests/test_rl.py']


def main(mode, report, work):
    t_start = time.time()
    P, C = PLAN[mode], CAP[mode]
    R = Runner(mode, work)
    W = lambda *p: os.path.join(work, *p)  # noqa: E731
    md = {'Device': section_device(mode)}  # section title -> (status, markdown), in the report's order
    named, stages = tests_using_device()
    on_gpu = named or [t for t in QUICK_STAGE_TESTS if t in stages]

    def checks_then_demo():
        # tests that run on the device (gpu), then the in-process device checks: training steps, KV cache, bf16
        if mode == 'gpu' and on_gpu:  # on the CPU, CI's own pytest line has just run the whole suite
            R.run('tests', [PY, '-m', 'pytest', '-q', *on_gpu], C['tests'])
        R.run('checks', [PY, os.path.join('bench', 'gpu_check.py'), '_checks', mode, '--json', W('checks.json')],
              C['checks'])
        R.run('demo_sft', [PY, 'train_mle.py', '--loss', 'sft', *steps(P['demo_sft']), *P['demo_batch'],
                           '--out_dir', W('demo', 'sft'), *SEED], C['sft'])
        prefs_pipeline(R, P, C, W, 'demo', W('demo', 'sft'), 'demo_sft')

    def big_then_ddp():
        # SFT throughput at the big shape; its plain run is also the big shape's SFT checkpoint for DPO/RLOO
        for comp in ([False, True] if P['compile'] else [False]):
            name = 'sft_big_compile' if comp else 'sft_big'
            R.run(name, [PY, 'train_mle.py', '--loss', 'sft', *P['big'], *steps(P['sft']), '--out_dir', W(name),
                         *SEED, *(['--compile'] if comp else [])], C['sft_compile' if comp else 'sft'])
        prefs_pipeline(R, P, C, W, 'big', W('sft_big'), 'sft_big')
        # one training stage under torchrun, one process: nccl on CUDA, gloo on the CPU (model.ddp_setup)
        R.run('torchrun', [PY, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '1',
                           'train_mle.py', '--loss', 'sft', *([] if mode == 'gpu' else TOY), *steps(P['ddp']),
                           '--out_dir', W('ddp'), *SEED],
              C['ddp'], env={'NCCL_DEBUG': 'VERSION'})  # NCCL prints its version line when it starts

    R.side_by_side(checks_then_demo, big_then_ddp)
    # run.sh last: it gets whatever is left of the budget (OUT: run.sh's own output folder, a temp one)
    runsh = ['bash', 'run.sh'] + ([] if mode == 'gpu' else ['tiny'])
    R.run('run_sh', runsh, 10 ** 6, env={'OUT': W('run_sh')})

    res = {}
    if R.pieces['checks']['status'] == 'pass':
        with open(W('checks.json')) as f:
            res = json.load(f)
    md.update(checks_markdown(mode, named, stages, on_gpu, R.pieces, res))
    md['run.sh'] = runsh_markdown(mode, runsh, R.pieces['run_sh'], W('run_sh'))
    sft = [(c, R.pieces[n], rows(W(n))) for c, n in ((False, 'sft_big'), (True, 'sft_big_compile')) if n in R.pieces]
    md['SFT throughput and MFU'] = sft_markdown(mode, P, sft)
    md['DPO and RLOO throughput'] = prefs_markdown(mode, P, R.pieces, work)
    md['torchrun --nproc_per_node 1'] = ddp_markdown(mode, R.pieces['torchrun'], rows(W('ddp')))

    write_report(mode, report, md, R.pieces, time.time() - t_start)
    bad = [n for n, r in R.pieces.items() if r['status'] != 'pass' and not (n == 'run_sh' and r['status'] == 'timed out')]
    bad += [t for t, (s, _) in md.items() if s == 'FAIL']
    if bad:
        print(f"[gpu_check] not passed: {', '.join(bad)}", flush=True)
    return 1 if bad else 0


PIPES = (('demo', 'demo_', 'demo_sft'), ('big', 'big_', 'sft_big'))  # shape, piece prefix, its SFT piece


def prefs_pipeline(R, P, C, W, shape, sft_dir, sft_name):
    """Preference pairs from the SFT policy, an RM, then DPO and RLOO: a few steps each, for their throughput."""
    os.makedirs(W(shape), exist_ok=True)
    pre, prefs = shape + '_', W(shape, 'prefs.pt')
    R.run(pre + 'label', [PY, 'eval.py', 'label', '--policy', sft_dir, '--task', 'sentiment', '--seed', '1337',
                          '--n_pairs', str(P['pairs'][0]), '--n_val', str(P['pairs'][1]), '--out', prefs],
          C['stage'], needs=[sft_name])
    R.run(pre + 'rm', [PY, 'train_rm.py', '--prefs', prefs, '--init', sft_dir, *steps(P['rm']),
                       '--out_dir', W(shape, 'rm'), *SEED], C['stage'], needs=[pre + 'label'])
    R.run(pre + 'dpo', [PY, 'train_mle.py', '--loss', 'dpo', '--prefs', prefs, '--ref', sft_dir, *steps(P['dpo']),
                        '--out_dir', W(shape, 'dpo'), *SEED], C['stage'], needs=[pre + 'label'])
    R.run(pre + 'rloo', [PY, 'train_rl.py', '--algo', 'rloo', '--reward', W(shape, 'rm'), '--init', sft_dir,
                         *steps(P['rloo']), '--out_dir', W(shape, 'rloo'), *SEED], C['stage'], needs=[pre + 'rm'])


def steps(s):
    return ['--max_iters', str(s[0]), '--eval_interval', str(s[1])]


# -----------------------------------------------------------------------------
# Markdown of each section

def checks_markdown(mode, named, stages, on_gpu, pieces, res):
    gpu = mode == 'gpu'
    chk = pieces['checks']
    out = {}
    head = ("Tests that name the device (grep of tests/ for 'cuda' or 'get_device'): " +
            (', '.join(named) if named else "**none**") + ". Tests that run a training stage, which takes "
            "`--device auto` and so runs on CUDA where there is a GPU: " + (', '.join(stages) or 'none') + ".\n\n")
    st = 'pass'
    if not gpu:
        head += "cpu mode: the suite is not rerun here (CI's pytest line runs all of it on the CPU).\n\n"
    elif on_gpu:
        t = pieces['tests']
        head += (f"On the GPU, `pytest -q {' '.join(on_gpu)}`" +
                 ('' if named else ' (the quick ones among the stage-running tests)') +
                 f": {status_cell(t)} in {t['wall']:.0f} s.\n\n```\n{tail(t['log'], 6)}\n```\n\n")
        st = 'pass' if t['status'] == 'pass' else 'FAIL'
    head += ("Since no test names the device, also a small CUDA-specific check: " if not named and gpu else
             "A small device check (cpu mode: on the CPU): " if not gpu else "Also a small CUDA-specific check: ")
    head += ("the default (demo) model shape, SFT steps on real fortunes windows through the stages' own "
             "`M.autocast` (bf16 on CUDA) and `M.train_step` with `configure_optimizer` (fused AdamW on CUDA).\n\n")
    tr = res.get('train')
    if tr:
        head += ('| device | steps x batch | loss first -> last | logits dtype | fused AdamW | peak memory | pass |\n'
                 '|---|---|---|---|---|---|---|\n'
                 f"| {tr['device']} | {tr['steps']} x {tr['batch']} | {tr['loss_first']:.3f} -> {tr['loss_last']:.3f} | "
                 f"{tr['logits_dtype']} | {tr['fused']} | {tr['peak_mem_mb']} | {tr['pass']} |")
        st = st if tr['pass'] else 'FAIL'
    else:
        head += f"The check did not run to the end: {status_cell(chk)}.\n\n```\n{tail(chk['log'])}\n```"
        st = 'FAIL'
    out['Test suite on the device'] = (st, head)

    kv = res.get('kv')
    if kv:
        body = (f"`model.sample` with `use_cache=True` and with `use_cache=False`, temperature 1, the same uniforms "
                f"`u=` ({kv['rows']} prompts x {kv['new']} new tokens, the model from the check above, {kv['precision']}). "
                f"Logits: both ways teacher-forced on the cached sample's tokens, compared at its real positions.\n\n"
                '| differing tokens | rows that differ | expected flips from the logit gap | max abs logit difference '
                '| max abs logit | tolerance | pass |\n|---|---|---|---|---|---|---|\n'
                f"| {kv['diff_tokens']} of {kv['real_tokens']} | {kv['diff_rows']} of {kv['rows']} | "
                f"{kv['expected_flips']:.2f} | {kv['max_logit_diff']:.3g} | {kv['max_abs_logit']:.3g} | "
                f"{kv['tol']:.3g} | {kv['pass']} |\n\n"
                "Judged on the logit difference only. A differing token is a rounding difference landing on a "
                "boundary of the inverse CDF (sum over the vocabulary of |CDF difference| = the chance of a flip, "
                "summed over the sampled positions in the 'expected flips' column); after a flip the rest of its row "
                "differs too.")
        out['KV-cache decoding vs full forward'] = ('pass' if kv['pass'] else 'FAIL', body)
    else:
        out['KV-cache decoding vs full forward'] = ('FAIL', f"not measured: the check {status_cell(chk)}.")

    bf = res.get('bf16')
    if bf:
        body = (f"{bf['what']}; the same weights, {bf['rows']} val windows of {bf['T']} tokens, vocab {bf['vocab']}.\n\n"
                '| max abs logit difference | max abs log-prob difference (all vocab entries) | max abs log-prob '
                'difference (the next tokens) | mean abs logit difference | max abs logit | tolerance | pass |\n'
                '|---|---|---|---|---|---|---|\n'
                f"| {bf['max_logit_diff']:.3g} | {bf['max_logprob_diff']:.3g} | {bf['max_tok_logprob_diff']:.3g} | "
                f"{bf['mean_logit_diff']:.2g} | {bf['max_abs_logit']:.3g} | {bf['tol']:.3g} | {bf['pass']} |\n\n"
                f"Tolerance: {bf['tol_rule']}.")
        out['bf16 autocast vs fp32'] = ('pass' if bf['pass'] else 'FAIL', body)
    else:
        out['bf16 autocast vs fp32'] = ('FAIL', f"not measured: the check {status_cell(chk)}.")
    return out


def sft_markdown(mode, P, sft_rows):
    lines = [f"`train_mle.py --loss sft` at {P['big_name']}, {P['sft'][0]} steps, batch "
             f"{'8' if mode == 'cpu' else '32'}; a log row every {P['sft'][1]} steps. Steady state = the last row "
             "(the steps after the first row, so without warm-up or compilation); the first row is shown for the "
             "cost of those. MFU: the stage's own (nanoGPT's 6N + 12LTC FLOPs per token against the GPU's bf16 "
             "peak), logged on CUDA only.\n",
             '| --compile | steady tokens/s | steady MFU | first-row tokens/s | wall s | status |',
             '|---|---|---|---|---|---|']
    for comp, r, rs in sft_rows:
        last, first = (rs[-1] if len(rs) > 1 else {}), (rs[0] if rs else {})
        lines.append(f"| {'yes' if comp else 'no'} | {fmt(last.get('tokens_per_s'), '.0f')} | "
                     f"{fmt(last.get('mfu'), '.1%') if last.get('mfu') is not None else ('-' if mode == 'gpu' else 'n/a (cpu)')} | "
                     f"{fmt(first.get('tokens_per_s'), '.0f')} | {r['wall']:.0f} | {status_cell(r)} |")
    if not P['compile']:
        lines.append("| yes | cpu mode: not run (inductor takes over 2 minutes to build its CPU kernels for even a "
                     "toy model on 2 cores) | | | | |")
    st = 'pass' if all(r['status'] == 'pass' for _, r, _ in sft_rows) else 'FAIL'
    fb = failure_block([('sft_big' + ('_compile' if c else ''), r) for c, r, _ in sft_rows])
    return st, '\n'.join(lines) + ('\n\n' + fb if fb else '')


def steady(rs, key):
    """RLOO's samples_per_s is cumulative over the run; the rate between its last two rows leaves out warm-up.
    With n = step * samples per step and t = n / rate, rate = (s2 - s1) / (s2 / r2 - s1 / r1)."""
    if len(rs) < 2 or not rs[-1].get(key) or not rs[-2].get(key):
        return None
    (s1, r1), (s2, r2) = ((r['step'], r[key]) for r in rs[-2:])
    return (s2 - s1) / (s2 / r2 - s1 / r1)


def prefs_markdown(mode, P, pieces, work):
    lines = [f"Each shape: an SFT checkpoint (demo: {P['demo_sft'][0]} steps; big: the SFT run above), "
             f"`eval.py label --n_pairs {P['pairs'][0]} --n_val {P['pairs'][1]}` (sentiment), `train_rm.py` "
             f"{P['rm'][0]} steps, `train_mle.py --loss dpo` {P['dpo'][0]} steps (32 pairs a step), `train_rl.py "
             f"--algo rloo` {P['rloo'][0]} steps (16 prompts x 4 samples of 24 tokens). DPO pairs/s: the last log row "
             "(the steps after the first row). RLOO samples/s: as logged (cumulative, so with the first step's "
             "warm-up) and between the last two rows (steady).\n",
             '| shape | DPO pairs/s | RLOO samples/s (logged) | RLOO samples/s (steady) | RLOO sampling share | '
             'pieces (sft, label, rm, dpo, rloo) |', '|---|---|---|---|---|---|']
    ok = True
    names = []
    for shape, pre, sft_name in PIPES:
        dpo, rl = rows(os.path.join(work, shape, 'dpo')), rows(os.path.join(work, shape, 'rloo'))
        ps = [sft_name, pre + 'label', pre + 'rm', pre + 'dpo', pre + 'rloo']
        names += [(n, pieces[n]) for n in ps[1:] + ([sft_name] if shape == 'demo' else [])]
        ok &= all(pieces[n]['status'] == 'pass' for n in ps)
        label = 'demo (train_mle.py defaults: 4 layers, 4 heads, 192 wide, context 64, vocab 4096)' \
            if shape == 'demo' else P['big_name']
        lines.append(f"| {label} | {fmt(dpo[-1].get('pairs_per_s') if len(dpo) > 1 else None)} | "
                     f"{fmt(rl[-1].get('samples_per_s') if rl else None)} | {fmt(steady(rl, 'samples_per_s'))} | "
                     f"{fmt(rl[-1].get('sampling_share') if rl else None, '.0%')} | "
                     f"{', '.join(status_cell(pieces[n]) for n in ps)} |")
    fb = failure_block(names)
    return ('pass' if ok else 'FAIL'), '\n'.join(lines) + ('\n\n' + fb if fb else '')


def ddp_markdown(mode, r, rs):
    with open(os.path.join(ROOT, 'model.py')) as f:
        pg = next((line.strip() for line in f if 'init_process_group' in line), '(not found in model.py)')
    log = open(r['log'], errors='replace').read() if os.path.exists(r['log']) else ''
    dev = next((line for line in log.splitlines() if 'parameters' in line and 'device' in line), '(no device line)')
    nccl = re.search(r'NCCL version [^\n]*', log)
    backend = ('nccl: ' + (f"NCCL started (`{nccl.group(0).strip()}`)" if nccl else 'no NCCL version line in the '
               'output (NCCL_DEBUG=VERSION prints one when NCCL starts)')) if mode == 'gpu' else 'cpu mode: gloo'
    body = (f"`python -m torch.distributed.run --standalone --nproc_per_node 1 train_mle.py --loss sft` "
            f"({'the demo shape' if mode == 'gpu' else 'toy shape'}, {PLAN[mode]['ddp'][0]} steps): "
            f"{status_cell(r)} in {r['wall']:.0f} s. Process group (model.ddp_setup): `{pg}`; {backend}.\n\n"
            f"Stage line: `{dev.strip()}`\n\nLast log row: `{json.dumps(rs[-1]) if rs else '(none)'}`")
    if r['status'] != 'pass':
        body += f"\n\n```\n{tail(r['log'])}\n```"
    return ('pass' if r['status'] == 'pass' else 'FAIL'), body


def runsh_markdown(mode, argv, r, out):
    done = sorted(glob.glob(os.path.join(out, '*.done')), key=os.path.getmtime)  # in the order they finished
    stages = ', '.join(f"{os.path.basename(d)[:-5]} {open(d).read().strip() or '?'} s" for d in done) or 'none'
    word = {'pass': 'finished', 'timed out': f"timed out after {r['limit']} s (the rest of the budget)",
            'skipped': 'not run (the budget was spent)'}.get(r['status'], f"FAILED (rc {r.get('rc')})")
    body = (f"`OUT=<temp dir> {' '.join(argv)}`{' (cpu mode: tiny)' if mode == 'cpu' else ' (demo size)'}: "
            f"{word}; wall time {r['wall']:.0f} s.\n\nStages finished (their .done markers, s): {stages}.\n\n"
            f"Last lines of its output:\n\n```\n{tail(r['log'])}\n```")
    return (r['status'] if r['status'] in ('pass', 'timed out') else 'FAIL'), body


def write_report(mode, report, md, pieces, wall):
    commit = subprocess.run(['git', 'describe', '--always', '--dirty'], cwd=ROOT, capture_output=True, text=True)
    head = [f"# GPU check ({mode} mode)\n",
            f"`bash bench/gpu_check.sh{'' if mode == 'gpu' else ' cpu'}` at {commit.stdout.strip() or '?'}, "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}; total {wall:.0f} s (budget {SCALE * PLAN[mode]['budget']:.0f} s for the "
            "pieces). " + ("cpu mode: toy sizes on the CPU; the numbers show the path works, not GPU speed."
                           if mode == 'cpu' else ''), '',
            '| section | status |', '|---|---|']
    head += [f'| {t} | {s} |' for t, (s, _) in md.items()]
    head += ['', '<details><summary>every piece: status and wall time</summary>', '',
             '| piece | status | wall s |', '|---|---|---|']
    head += [f"| {n} | {status_cell(r)} | {r['wall']:.1f} |" for n, r in pieces.items()]
    head += ['', '</details>', '']
    body = [f"## {t}\n\n{text}\n" for t, (_, text) in md.items()]
    os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
    with open(report, 'w') as f:
        f.write('\n'.join(head + body))
    print(f"[gpu_check] wrote {report} ({wall:.0f} s)", flush=True)


# -----------------------------------------------------------------------------
# The in-process device checks (one subprocess): training steps, KV cache vs full forward, bf16 vs fp32

def checks(mode, out_json):
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, ROOT)
    import model as M
    gpu = mode == 'gpu'
    dev = 'cuda' if gpu else 'cpu'
    res = {}
    cfg = M.GPTConfig()  # the default (demo) shape
    torch.manual_seed(0)
    model = M.GPT(cfg).to(dev)
    data = torch.tensor([t for d in M.get_data(cfg.vocab_size, 'train') for t in d])
    val = torch.tensor([t for d in M.get_data(cfg.vocab_size, 'val') for t in d])
    T = cfg.block_size

    # 1. training steps: some learning makes the logits below less flat than a random init's
    steps, B = (50, 32) if gpu else (10, 8)
    opt = model.configure_optimizer(2e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for step in range(steps):
        idx = torch.randint(data.numel() - T - 1, (B,), generator=g)
        x = torch.stack([data[i:i + T + 1] for i in idx]).to(dev)
        with M.autocast(dev):
            logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
        M.train_step(model, opt, loss, M.cosine_lr(step, steps, 2e-3))
        losses.append(loss.item())
    ok = all(math.isfinite(v) for v in losses) and min(losses[-3:]) < losses[0] - 0.1
    res['train'] = {'device': torch.cuda.get_device_name() if gpu else 'cpu', 'steps': steps, 'batch': B,
                    'loss_first': losses[0], 'loss_last': losses[-1], 'logits_dtype': str(logits.dtype),
                    'fused': bool(opt.defaults.get('fused')), 'pass': ok,
                    'peak_mem_mb': f"{torch.cuda.max_memory_allocated() / 2 ** 20:.0f} MiB" if gpu else '-'}
    model.eval()

    # 2. KV cache: sample both ways with the same uniforms; then logits both ways on the cached sample's tokens
    prompts = M.get_prompts(cfg.vocab_size, 'val')[0][:64 if gpu else 32].to(dev)
    Bp, Pl, Cn, eos = prompts.size(0), prompts.size(1), 24, cfg.vocab_size - 1
    u = torch.rand(Bp, Cn, generator=torch.Generator().manual_seed(1)).to(dev)
    y1, m1 = M.sample(model, prompts, Cn, eos, 1.0, use_cache=True, u=u)
    y2, m2 = M.sample(model, prompts, Cn, eos, 1.0, use_cache=False, u=u)
    real = (m1 + m2) > 0
    diff = (y1 != y2) & real
    cache = M.kv_cache(model, Bp, Pl + Cn, torch.device(dev))
    with torch.no_grad(), M.autocast(dev):
        full = model(torch.cat([prompts, y1], 1)[:, :-1])[:, Pl - 1:].float()
        inc = [model(prompts, cache, 0, keep=1)[:, -1]]
        for t in range(Cn - 1):
            inc.append(model(y1[:, t:t + 1], cache, Pl + t)[:, -1])
        inc = torch.stack(inc, 1).float()
    at = m1 > 0
    kv_diff = (full - inc).abs().amax(-1)[at].max().item()
    cdf_gap = (F.softmax(full, -1).cumsum(-1) - F.softmax(inc, -1).cumsum(-1)).abs().sum(-1)[at].sum().item()
    max_abs = full[at].abs().max().item()
    # bf16 keeps 8 significant bits (a step of 2^-7 relative): allow 6% of the largest logit (~8 such steps of
    # accumulated rounding); fp32 (cpu) must agree to 1e-4
    tol = 0.06 * max_abs if gpu else 1e-4
    res['kv'] = {'rows': Bp, 'new': Cn, 'real_tokens': int(real.sum()), 'diff_tokens': int(diff.sum()),
                 'diff_rows': int(diff.any(1).sum()), 'max_logit_diff': kv_diff, 'max_abs_logit': max_abs,
                 'expected_flips': cdf_gap, 'tol': tol, 'pass': kv_diff <= tol,
                 'precision': 'bf16 autocast, bf16 cache, as the stages run on CUDA' if gpu else 'cpu mode: fp32'}

    # 3. bf16 autocast vs fp32 on the same weights (fp32 reference without TF32, which M.autocast switches on)
    n = 16 if gpu else 4
    x = torch.stack([val[i * (T + 1):(i + 1) * (T + 1)] for i in range(n)]).to(dev)
    what = ("the stages' `M.autocast` (bf16, TF32 on) vs strict fp32 (TF32 off)" if gpu else
            "cpu mode: torch's CPU bf16 autocast (the stages run fp32 on the CPU; this only exercises the "
            "comparison) vs fp32")
    # M.autocast switches TF32 on when called: switch it off for the reference, and call M.autocast after it
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        ref = model(x[:, :-1]).float()
        with M.autocast(dev) if gpu else torch.autocast('cpu', dtype=torch.bfloat16):
            low = model(x[:, :-1]).float()
    lr_, ll = ref.log_softmax(-1), low.log_softmax(-1)
    nxt = x[:, 1:, None]
    d_logit = (ref - low).abs().max().item()
    d_lp = (lr_ - ll).abs().max().item()
    d_tok = (lr_.gather(-1, nxt) - ll.gather(-1, nxt)).abs().max().item()
    max_abs = ref.abs().max().item()
    tol = 0.06 * max_abs
    res['bf16'] = {'what': what, 'rows': n, 'T': T, 'vocab': cfg.vocab_size, 'max_logit_diff': d_logit,
                   'max_logprob_diff': d_lp, 'max_tok_logprob_diff': d_tok,
                   'mean_logit_diff': (ref - low).abs().mean().item(), 'max_abs_logit': max_abs, 'tol': tol,
                   'tol_rule': f"every max abs difference (logits and log-probs) <= 6% of the largest |logit| "
                               f"({max_abs:.3g}), i.e. about 8 bf16 rounding steps (bf16 keeps 8 significant bits: "
                               f"a step of 2^-7 = 0.8% relative)",
                   'pass': max(d_logit, d_lp, d_tok) <= tol}
    with open(out_json, 'w') as f:
        json.dump(res, f, indent=1)
    failed = [k for k, v in res.items() if not v['pass']]
    print(json.dumps(res, indent=1))
    if failed:
        print(f"checks failed: {failed}")
    return 0  # the report judges each check; this process only fails if a check could not run


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=['gpu', 'cpu', '_checks'])
    ap.add_argument('mode', nargs='?', choices=['gpu', 'cpu'], help='(_checks only)')
    ap.add_argument('--report')
    ap.add_argument('--work')
    ap.add_argument('--json')
    a = ap.parse_args()
    if a.what == '_checks':
        sys.exit(checks(a.mode, a.json))
    sys.exit(main(a.what, a.report, a.work))
