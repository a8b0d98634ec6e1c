"""Bad input gets one clear line and a non-zero exit; a killed run resumes to the same checkpoint."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, ENV, M, STAGES, TASK, tiny_gpt, save_tiny, run, planted_prefs


def fails_cleanly(*args, match):
    r = run(*args, check=False)
    assert r.returncode != 0, r.stdout
    assert 'Traceback' not in r.stderr, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and match in lines[0], r.stderr
    return r


def test_bad_inputs(world, tmp_path):
    sft, prefs, rm = world['sft'], world['prefs'], world['rm']
    out = str(tmp_path / 'x')
    fails_cleanly('train_rm.py', '--prefs', prefs, '--init', str(tmp_path / 'nope'), '--out_dir', out,
                  match='no checkpoint at')
    fails_cleanly('train_rl.py', '--algo', 'rloo', '--reward', sft, '--init', sft, '--out_dir', out,
                  match="is a 'sft' checkpoint, expected rm")
    big = save_tiny(str(tmp_path / 'big'), tiny_gpt(vocab_size=600))
    fails_cleanly('train_rl.py', '--algo', 'rloo', '--reward', rm, '--init', big, '--out_dir', out,
                  match='vocab_size 512, expected 600')
    fails_cleanly('train_mle.py', '--loss', 'dpo', '--prefs', prefs, '--ref', big, '--out_dir', out,
                  match='vocab_size 512, expected 600')
    fails_cleanly('train_mle.py', '--loss', 'dpo', '--prefs', prefs, '--ref', sft, '--out_dir', out, '--beta', '0',
                  match='--beta must be > 0')
    fails_cleanly('train_rl.py', '--algo', 'rloo', '--reward', rm, '--init', sft, '--out_dir', out, '--k', '1',
                  match='--k must be >= 2')
    other = planted_prefs(str(tmp_path / 'other.pt'), task={**TASK, 'name': 'overlap'})
    fails_cleanly('eval.py', 'prefs', rm, '--prefs', other, match='task')
    for name, content in (('empty.pt', b''), ('junk.pt', b'not a torch file at all')):
        with open(tmp_path / name, 'wb') as f:
            f.write(content)
        fails_cleanly('train_rm.py', '--prefs', str(tmp_path / name), '--init', sft, '--out_dir', out,
                      match='not a valid preference file')
    data = torch.load(prefs, weights_only=True)
    data['train']['chosen'] = data['train']['chosen'][:3]  # truncated: fields of different lengths
    torch.save(data, tmp_path / 'short.pt')
    fails_cleanly('train_rm.py', '--prefs', str(tmp_path / 'short.pt'), '--init', sft, '--out_dir', out,
                  match='different')
    data = torch.load(prefs, weights_only=True)
    del data['val']
    torch.save(data, tmp_path / 'noval.pt')
    fails_cleanly('train_rm.py', '--prefs', str(tmp_path / 'noval.pt'), '--init', sft, '--out_dir', out,
                  match="split 'val' is missing")
    assert not os.path.exists(out)  # none of the above created an output


def test_an_output_dir_holding_a_run_is_not_overwritten(world):
    sft, prefs = world['sft'], world['prefs']
    before = open(os.path.join(sft, 'ckpt.pt'), 'rb').read()
    fails_cleanly('train_rm.py', '--prefs', prefs, '--init', sft, '--out_dir', sft, match='already holds a run')
    assert open(os.path.join(sft, 'ckpt.pt'), 'rb').read() == before


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(world, tmp_path):
    out = str(tmp_path / 'dpo')
    run('train_mle.py', '--loss', 'dpo', '--prefs', world['prefs'], '--ref', world['sft'], '--out_dir', out,
        '--max_iters', '2', '--no_tqdm')
    good = open(os.path.join(out, 'ckpt.pt'), 'rb').read()
    broken = tiny_gpt()
    with torch.no_grad():
        broken.ln_f.weight.fill_(float('nan'))  # a reference whose log-probs are NaN makes the loss NaN
    bad_ref = save_tiny(str(tmp_path / 'nan_ref'), broken)
    fails_cleanly('train_mle.py', '--loss', 'dpo', '--prefs', world['prefs'], '--ref', bad_ref,
                  '--out_dir', out, '--resume', '--max_iters', '4', '--no_tqdm', match='loss is nan')
    assert open(os.path.join(out, 'ckpt.pt'), 'rb').read() == good


@pytest.mark.parametrize('stage', list(STAGES))
def test_a_killed_run_resumes_to_the_same_checkpoint(world, tmp_path, stage):
    args = [a.format(**world) for a in STAGES[stage]] + ['--eval_interval', '2', '--no_tqdm']
    straight = str(tmp_path / 'straight')
    run(*args, '--out_dir', straight)
    killed = str(tmp_path / 'killed')
    p = subprocess.Popen([sys.executable, *args, '--out_dir', killed], cwd=ROOT, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = os.path.join(killed, 'ckpt.pt')
    while not os.path.exists(ckpt) and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)  # kill -9: no chance to save; the last periodic checkpoint must do
    p.wait()
    if M.load_checkpoint(killed)['step'] == M.load_checkpoint(straight)['step']:
        pytest.skip('the run finished before it could be killed')
    run(*args, '--out_dir', killed, '--resume')
    a, b = M.load_checkpoint(straight), M.load_checkpoint(killed)
    assert a['step'] == b['step']
    for k in a['model']:
        assert torch.equal(a['model'][k], b['model'][k]), k  # bitwise: all randomness is a function of the step
