"""torchrun: two CPU processes on gloo train every stage to the checkpoint one process reaches with the same
global batch (equal up to float rounding: the ranks sum their halves' gradients in another order)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, ENV, M, STAGES, run


def test_shard_splits_a_batch_into_contiguous_rows_whose_weights_give_the_global_mean():
    idx = torch.arange(10, 15)
    parts = [M.shard(idx, r, 2) for r in range(2)]
    assert [p.tolist() for p, _ in parts] == [[10, 11, 12], [13, 14]]
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])  # per-row losses; DDP averages the ranks' weighted means
    ddp = sum(w * losses[p - 10].mean() for p, w in parts) / 2
    assert ddp.item() == pytest.approx(losses.mean().item())
    mine, w = M.shard(torch.tensor([7]), 1, 2)  # a 1-row batch leaves rank 1 nothing: one row at weight 0
    assert mine.numel() == 1 and w == 0.0


def log(out_dir):
    with open(os.path.join(out_dir, 'log.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize('stage', list(STAGES))
def test_two_ranks_train_to_the_one_process_checkpoint(world, tmp_path, stage):
    args = [a.format(**world) for a in STAGES[stage]] + ['--no_tqdm']
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    run(*args, '--out_dir', one)
    run('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', *args, '--out_dir', two)
    a, b = M.load_checkpoint(one), M.load_checkpoint(two)
    assert (a['config']['world_size'], b['config']['world_size']) == (1, 2)
    assert a['step'] == b['step'] > 0
    # The Bradley-Terry loss cannot see a constant added to every score, so the RM's score_head.bias and ln_f.bias
    # (which only feeds the scalar head) have zero gradient up to rounding, which Adam turns into lr-sized steps
    # that differ from run to run. They shift every reward alike; the logged margins below pin the RM.
    blind = ('score_head.bias', 'ln_f.bias') if stage == 'rm' else ()
    for k in a['model']:
        if k not in blind:
            assert torch.allclose(a['model'][k], b['model'][k], rtol=1e-4, atol=1e-5), k
    if stage == 'sft':  # agreement must not be two copies of untrained weights
        assert log(one)[-1]['val_loss'] < log(one)[0]['val_loss'] - 0.05
    else:
        init = M.load_checkpoint(world['sft'])['model']
        assert max((a['model'][k] - init[k]).abs().max().item() for k in init if k in a['model']) > 1e-3
    for ra, rb in zip(log(one), log(two), strict=True):  # the logged (rank-reduced) metrics agree too
        assert ra.keys() == rb.keys()
        for k in ra.keys() - {'tokens_per_s', 'pairs_per_s', 'samples_per_s', 'sampling_share'}:  # timings
            assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-5), (ra['step'], k)
    if stage == 'online_dpo':  # every rank sampled its share of the prompts; the gathered pairs are identical
        for k in ('prompts', 'chosen', 'rejected'):
            assert torch.equal(a['pairs'][k], b['pairs'][k]), k


def test_sigterm_stops_every_rank_at_one_step_and_resume_continues(world, tmp_path):
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']
    args = ['train_rl.py', '--algo', 'rloo', '--reward', world['rm'], '--init', world['sft'], '--batch_size', '3',
            '--max_iters', '300', '--eval_interval', '10', '--no_tqdm']
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    run(*torchrun[1:], *args, '--out_dir', straight)
    p = subprocess.Popen([*torchrun, *args, '--out_dir', killed], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    while not os.path.exists(os.path.join(killed, 'ckpt.pt')) and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)  # torchrun passes it to both ranks, which agree on the step to stop at
    out = p.communicate(timeout=120)[0]
    step = M.load_checkpoint(killed)['step']
    if step == 300:
        pytest.skip('the run finished before it could be stopped')
    assert f'interrupted: checkpoint at step {step} saved' in out
    run(*torchrun[1:], *args, '--out_dir', killed, '--resume')
    a, b = M.load_checkpoint(straight), M.load_checkpoint(killed)
    assert a['step'] == b['step'] == 300
    for k in a['model']:
        assert torch.equal(a['model'][k], b['model'][k]), k
