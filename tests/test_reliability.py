"""Bad input gets one clear line and a non-zero exit; a killed run resumes to the same checkpoint."""
import json
import os
import pickle
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


BAD = {  # what is wrong: (command, with the paths of `broken` filled in; a word of the one-line error)
    'missing checkpoint': (['train_rm.py', '--prefs', '{prefs}', '--init', '{tmp}/nope'], 'no checkpoint at'),
    'checkpoint of the wrong stage': (['train_rl.py', '--algo', 'rloo', '--reward', '{sft}', '--init', '{sft}'],
                                      "is a 'sft' checkpoint, expected rm"),
    'vocab: policy vs RM': (['train_rl.py', '--algo', 'rloo', '--reward', '{rm}', '--init', '{big}'],
                            'vocab_size 512, expected 600'),
    'vocab: preference file vs reference': (['train_mle.py', '--loss', 'dpo', '--prefs', '{prefs}', '--ref', '{big}'],
                                            'vocab_size 512, expected 600'),
    'task: policy vs RM': (['train_rl.py', '--algo', 'online_dpo', '--reward', '{rm}', '--init', '{dpo_overlap}'],
                           'was trained for task'),
    'task: preference file vs RM': (['eval.py', 'prefs', '{rm}', '--prefs', '{prefs_overlap}'], 'was trained for task'),
    'empty preference file': (['train_rm.py', '--prefs', '{empty}', '--init', '{sft}'], 'not a valid preference file'),
    'junk preference file': (['train_rm.py', '--prefs', '{junk}', '--init', '{sft}'], 'not a valid preference file'),
    'truncated preference file': (['train_rm.py', '--prefs', '{truncated}', '--init', '{sft}'], 'different'),
    'preference file without val': (['train_rm.py', '--prefs', '{noval}', '--init', '{sft}'], "'val' is missing"),
    'beta <= 0': (['train_mle.py', '--loss', 'dpo', '--prefs', '{prefs}', '--ref', '{sft}', '--beta', '0'],
                  '--beta must be > 0'),
    'k < 2': (['train_rl.py', '--algo', 'rloo', '--reward', '{rm}', '--init', '{sft}', '--k', '1'], '--k must be >= 2'),
    'crafted pickle': (['train_rm.py', '--prefs', '{prefs}', '--init', '{evil}'], 'not a valid checkpoint'),
}


class Evil:
    def __reduce__(self):
        return (os.system, ('touch pwned_by_pickle',))


@pytest.fixture
def broken(world):
    """The `world` fixture's good files and broken ones made from them."""
    t, d = world['tmp'], dict(world)
    d['big'] = save_tiny(str(t / 'big'), tiny_gpt(vocab_size=600))
    d['dpo_overlap'] = save_tiny(str(t / 'dpo_overlap'), tiny_gpt(), stage='dpo', task={**TASK, 'name': 'overlap'},
                                 ref=world['sft'])
    d['prefs_overlap'] = planted_prefs(str(t / 'overlap.pt'), task={**TASK, 'name': 'overlap'})
    for name, content in (('empty', b''), ('junk', b'not a torch file at all')):
        d[name] = str(t / f'{name}.pt')
        with open(d[name], 'wb') as f:
            f.write(content)
    data = torch.load(world['prefs'], weights_only=True)
    data['train']['chosen'] = data['train']['chosen'][:3]
    d['truncated'] = str(t / 'truncated.pt')
    torch.save(data, d['truncated'])
    data = torch.load(world['prefs'], weights_only=True)
    del data['val']
    d['noval'] = str(t / 'noval.pt')
    torch.save(data, d['noval'])
    d['evil'] = str(t / 'evil')
    os.makedirs(d['evil'])
    with open(os.path.join(d['evil'], 'ckpt.pt'), 'wb') as f:
        pickle.dump({'model': Evil(), 'stage': 'sft'}, f)
    return d


@pytest.mark.parametrize('case', list(BAD))
def test_bad_input_gets_one_line_and_writes_nothing(broken, case):
    args, match = BAD[case]
    out = str(broken['tmp'] / 'out')
    args = [a.format(**broken) for a in args] + (['--out_dir', out] if args[0].startswith('train_') else [])
    fails_cleanly(*args, match=match)
    assert not os.path.exists(out)
    assert not os.path.exists(os.path.join(ROOT, 'pwned_by_pickle'))


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
def test_resuming_a_finished_run_does_nothing(world, tmp_path, stage):
    args = [a.format(**world) for a in STAGES[stage]] + ['--no_tqdm', '--out_dir', str(tmp_path / 'run')]
    run(*args)
    before = open(tmp_path / 'run' / 'ckpt.pt', 'rb').read()
    r = run(*args, '--resume')  # an SFT and an RM once crashed here, reading a val loss they never computed
    assert 'nothing to resume' in r.stdout and open(tmp_path / 'run' / 'ckpt.pt', 'rb').read() == before


def log_rows(out_dir):
    """A run's log.jsonl without the timing fields, which differ from run to run."""
    timing = ('tokens_per_s', 'pairs_per_s', 'samples_per_s', 'sampling_share', 'mfu')
    with open(os.path.join(out_dir, 'log.jsonl')) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in timing} for line in f]


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
    at_kill = M.load_checkpoint(killed)['step']
    if at_kill == M.load_checkpoint(straight)['step']:
        pytest.skip('the run finished before it could be killed')
    logged = len(log_rows(killed))
    run(*args, '--out_dir', killed, '--resume')
    a, b = M.load_checkpoint(straight), M.load_checkpoint(killed)
    assert a['step'] == b['step']
    for k in a['model']:
        assert torch.equal(a['model'][k], b['model'][k]), k  # bitwise: all randomness is a function of the step
    # Kills a --resume that silently restarts from scratch (the same final weights, training being deterministic):
    # the resumed process logs exactly the straight run's rows after the checkpointed step, from there on.
    assert log_rows(killed)[logged:] == [r for r in log_rows(straight) if r['step'] > at_kill]
