"""The main job at toy size, as a user runs it: bash run.sh tiny. Asserts outcomes, not just files."""
import json
import os
import subprocess

from conftest import ROOT


def test_tiny_pipeline(tmp_path):
    out = str(tmp_path / 'tiny')
    env = {**os.environ, 'OUT': out, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run(['bash', 'run.sh', 'tiny'], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
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
