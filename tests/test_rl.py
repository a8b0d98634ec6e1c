"""train_rl.py: leave-one-out advantages, the RLOO loss, KL = 0 at step 0, a planted reward, online DPO's pairs."""
import argparse
import json
import os
import sys

import torch

from conftest import M, tiny_gpt, save_tiny

import train_rl

TASK = {'name': 'sentiment', 'prompt_len': 8, 'completion_len': 8}


def test_rloo_advantages_by_hand():
    r = torch.tensor([1.0, 2.0, 6.0, 5.0, 5.0, 5.0])  # two prompts, k = 3
    # sample 0: 1 - (2 + 6)/2 = -3; sample 1: 2 - 3.5 = -1.5; sample 2: 6 - 1.5 = 4.5
    assert torch.equal(train_rl.rloo_advantages(r, 3), torch.tensor([-3.0, -1.5, 4.5, 0.0, 0.0, 0.0]))
    assert torch.equal(train_rl.rloo_advantages(torch.full((8,), 0.3), 4), torch.zeros(8))  # 0, not NaN


def test_rloo_loss_by_hand():
    """Kills a flipped KL sign in the penalised reward (score + beta * kl), and a KL term left in the gradient."""
    logp = torch.tensor([[-1.0, -1.0], [-2.0, 0.0], [-0.5, -0.5], [-3.0, -1.0]], requires_grad=True)  # sums -2 -2 -1 -4
    ref_lp = torch.tensor([[-1.5, -1.5], [-1.0, -1.0], [-1.0, -1.0], [-2.0, -2.0]])  # sums -3 -2 -2 -4
    score = torch.tensor([1.0, 2.0, 0.0, 3.0])
    loss, reward, kl = train_rl.rloo_loss(logp, ref_lp, score, beta=0.5, k=2)  # two prompts, k = 2
    assert torch.equal(kl, torch.tensor([1.0, 0.0, 1.0, 0.0]))  # sum log pi - sum log pi_ref
    assert torch.equal(reward, torch.tensor([0.5, 2.0, -0.5, 3.0]))  # score - 0.5 * kl
    # advantages: each reward minus the other sample's: -1.5, 1.5, -3.5, 3.5
    # loss = -mean(adv * sum log pi) = -(3 - 3 + 3.5 - 14) / 4
    assert loss.item() == 2.625
    loss.backward()  # the KL enters as a constant in the reward: d loss / d log pi(y_t) = -adv / 4 at every token
    assert torch.equal(logp.grad, torch.tensor([[0.375] * 2, [-0.375] * 2, [0.875] * 2, [-0.875] * 2]))


def planted_run(tmp_path, monkeypatch, algo, *extra):
    """Run train_rl.py in-process against an RM that pays for byte tokens (ids < 256): the share of them."""
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt(seed=1))
    rm = save_tiny(str(tmp_path / 'rm'), tiny_gpt(scalar_head=True), stage='rm', rm_type='global', task=TASK,
                   reward_mean=0.0)
    # only the RM scores through rm_score (the policy's log-probs never do), so planting it plants the reward
    monkeypatch.setattr(M, 'rm_score', lambda rm, rm_type, x, y, m: ((y < 256).float() * m).sum(1) / m.sum(1))
    out = str(tmp_path / algo)
    monkeypatch.setattr(sys, 'argv', ['train_rl.py', '--algo', algo, '--reward', rm, '--init', sft,
                                      '--out_dir', out, '--no_tqdm', *extra])
    train_rl.main()
    return [json.loads(l) for l in open(os.path.join(out, 'log.jsonl'))], out


def test_rloo_raises_a_planted_reward_with_kl_zero_at_step_0(tmp_path, monkeypatch):
    rows, out = planted_run(tmp_path, monkeypatch, 'rloo', '--max_iters', '40', '--eval_interval', '1',
                            '--lr', '1e-2', '--batch_size', '16', '--k', '4', '--beta', '0.01')
    assert rows[0]['objective/kl'] == 0.0  # the first batch is sampled from the reference itself
    early = sum(r['objective/scores'] for r in rows[:5]) / 5
    late = sum(r['objective/scores'] for r in rows[-5:]) / 5
    assert late > early + 0.1, (early, late)
    assert all(torch.isfinite(torch.tensor(r['objective/kl'])) for r in rows) and rows[-1]['objective/kl'] > 0
    for key in ('objective/rlhf_reward', 'entropy', 'completion_length', 'samples_per_s', 'sampling_share'):
        assert key in rows[-1]
    assert M.load_checkpoint(out, stages=['rl'])['step'] == 40


def test_online_dpo_raises_a_planted_reward(tmp_path, monkeypatch):
    rows, _ = planted_run(tmp_path, monkeypatch, 'online_dpo', '--n_prompts', '128', '--rounds', '3', '--k', '4',
                          '--lr', '1e-2', '--batch_size', '32', '--eval_interval', '1')
    first, last = rows[0]['objective/scores'], rows[-1]['objective/scores']  # the sampler's reward per round
    assert rows[0]['objective/kl'] == 0.0
    assert last > first + 0.05, (first, last)


def test_online_dpo_pairs_are_the_rms_best_and_worst():
    k, n = 4, 3
    prompts = torch.arange(n * 8).view(n, 8)
    ys = torch.tensor([[3, 1, 4, 1], [5, 5, 5, 5], [2, 7, 1, 8]])  # the reward of each sample, row = prompt

    def sample(x, u):  # completion of one token: its own reward, read back by the fake RM
        y = ys[x[::k, 0] // 8].flatten()[:, None]
        return y, torch.ones_like(y, dtype=torch.float)

    def reward(x, y, m):
        return y[:, 0].float()

    args = argparse.Namespace(seed=0, n_prompts=n, k=k, temperature=1.0, beta=0.1)
    ref = M.frozen(tiny_gpt())
    pairs = train_rl.online_pairs(ref, ref, reward, sample, prompts, 1, args, 0, 'cpu')
    got = {int(p[0]) // 8: (int(c), int(r)) for p, c, r in zip(pairs['prompts'], pairs['chosen'], pairs['rejected'])}
    assert got == {0: (4, 1), 2: (8, 1)}  # prompt 1: all samples tie, so no pair
    assert pairs['stats']['objective/kl'] == 0.0
