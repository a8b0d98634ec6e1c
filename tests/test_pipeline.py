"""The main job at toy size, as a user runs it: bash run.sh tiny. Asserts outcomes, not just files."""
import glob
import json
import os
import re
import subprocess

from tqdm import tqdm

from conftest import ROOT


def progress(log):
    """run.sh's condensed view of a stage's log (its function progress, cut out of the script and called alone)."""
    fn = re.search(r'^progress\(\) \{.*?^\}$', open(os.path.join(ROOT, 'run.sh')).read(), re.M | re.S).group()
    return subprocess.run(['bash', '-c', f'{fn}\nprogress "$1"', 'progress', log], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_status_line_condenses_a_progress_bar(tmp_path):
    """A stage's segment of the status line: the last bar tqdm drew in its log ('\r' between redraws, rows
    written between them), as done/total, the bar's postfix, elapsed<left; a redraw half written is skipped."""
    log = str(tmp_path / 'sft.log')
    with open(log, 'w') as f:
        f.write('sft: 677919 train / 34051 val tokens\n')
        bar = tqdm(total=400, desc='sft', file=f, mininterval=0)
        for step in range(1, 181):
            bar.update(1)
            bar.set_postfix(loss=f'{6 - step / 100:.4f}')
            if step == 80:
                bar.write('step 80 lr 0.002843 loss 6.035 val_loss 6.085', file=f)
        bar.close()
        f.write('\rsft:  45%|####5     | 18')
    assert re.fullmatch(r'180/400 loss=4\.2000 \d\d:\d\d<\d\d:\d\d', progress(log)), progress(log)
    with open(log, 'w') as f:  # eval.py score's bar: samples drawn, the policy being scored
        bar = tqdm(total=1000, desc='score', unit='sample', file=f, mininterval=0)
        bar.set_postfix(policy='dpo/step_32')
        bar.update(400)
        bar.close()
    assert re.fullmatch(r'400/1000 policy=dpo/step_32 \d\d:\d\d<\d\d:\d\d', progress(log)), progress(log)
    open(log, 'w').write('sft: 677919 train / 34051 val tokens\n')  # no bar drawn yet: nothing
    assert progress(log) == ''


def test_tiny_pipeline(tmp_path):
    out = str(tmp_path / 'tiny')
    env = {**os.environ, 'OUT': out, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run(['bash', 'run.sh', 'tiny'], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # not on a terminal (a pipe here), the status line is a plain line every 30 s while stages run: the job's
    # clock, then each running stage and its bar (the watcher stops before the table, a few seconds before the end)
    status = [line for line in r.stdout.splitlines() if re.match(r'\[\d+:\d\d\]', line)]
    total = int(dict(line.split('\t') for line in open(os.path.join(out, 'timings.tsv')))['total'])
    assert '\r' not in r.stdout and len(status) >= total // 30 - 1, (total, status)
    assert not status or any(re.search(r' \w+ \d+/\d+ .*\d\d:\d\d<', line) for line in status), status
    # every stage's log keeps its rows and ends with its bar full (label counts pairs, score samples)
    for log in glob.glob(os.path.join(out, '*.log')):
        done, of = progress(log).split()[0].split('/')
        assert done == of, (log, progress(log))
    assert 'step 400 ' in open(os.path.join(out, 'sft.log')).read()
    # the figure and the KL-budget table, one row per method, each cell a val-chosen checkpoint
    assert os.path.getsize(os.path.join(out, 'frontier_sentiment.png')) > 10_000
    rows = {line.split(' | ')[0][2:]: line for line in r.stdout.splitlines() if line.startswith('| ')}
    assert set(rows) >= {'dpo', 'rloo', 'best-of-N'} and 'KL <= 10' in rows['method']
    assert '(KL ' in rows['rloo'] and 'best-of-N' in open(os.path.join(out, 'table.md')).read()
    # every snapshot scored, on val and on test alike (each lane scores its own route's); SFT at KL 0
    test, val = ({k: v for m in ('dpo', 'rloo') for k, v in
                  json.load(open(os.path.join(out, f'score_{m}_{split}.json')))['policies'].items()}
                 for split in ('test', 'val'))
    assert set(test) == set(val) and test['sft']['kl'] == 0.0
    rloo = [r for n, r in test.items() if n.startswith('rloo/step_')]
    assert len(rloo) == 4 and len([n for n in test if n.startswith('dpo/step_')]) >= 3
    # RL against the learned RM raises the gold reward of the tiny policy: the online route works end to end
    assert max(r['gold_reward'] for r in rloo) > test['sft']['gold_reward'] + 0.05, (rloo, test['sft'])
    assert all(r['kl'] > 0 for r in rloo)
    # a rerun reuses every finished stage
    r2 = subprocess.run(['bash', 'run.sh', 'tiny'], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r2.returncode == 0 and r2.stdout.count('done before, reused') == 11
