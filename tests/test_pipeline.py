"""The whole pipeline at toy size, as a user runs it: bash run.sh tiny. Asserts outcomes, not just files."""
import json
import os
import subprocess

from conftest import ROOT


def test_tiny_pipeline(tmp_path):
    out = str(tmp_path / 'tiny')
    env = {**os.environ, 'OUT': out, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run(['bash', 'run.sh', 'tiny'], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.load(open(os.path.join(out, 'eval_sentiment.json')))
    pol = res['policies']
    assert set(pol) >= {'sft', 'dpo', 'dpo2x', 'odpo_sft', 'odpo_dpo', 'rloo', 'human_reference'}
    assert pol['sft']['kl'] == 0.0  # the reference scored against itself
    # RL against the learned RM raises the gold reward of the tiny policy: the online route works end to end
    assert pol['rloo']['gold_reward'] > pol['sft']['gold_reward'], (pol['rloo'], pol['sft'])
    assert pol['rloo']['kl'] > 0
    assert '| sentiment | rloo |' in r.stdout  # the table is printed
    # a rerun reuses every finished stage
    r2 = subprocess.run(['bash', 'run.sh', 'tiny'], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r2.returncode == 0 and r2.stdout.count('reused') == 9
