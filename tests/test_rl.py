"""train_rl.py: leave-one-out advantages, the RLOO loss, KL = 0 at step 0, a planted reward, online DPO's pairs;
PPO's rewards, advantages and loss by hand, a planted reward, its checkpoint scored by eval.py; the dispatch."""
import json
import math
import os
import sys

import pytest
import torch

from conftest import M, tiny_gpt, save_tiny, run

import eval as E
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
    # only the RM scores through reward_of (the policy's log-probs never do), so planting it plants the reward
    monkeypatch.setattr(M, 'reward_of', lambda rm, rm_type, x, y, m: ((y < 256).float() * m).sum(1) / m.sum(1))
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

    def reward_of(x, y, m):
        return y[:, 0].float()

    ref = M.frozen(tiny_gpt())
    pairs = train_rl.online_pairs(ref, ref, reward_of, 0.0, sample, prompts, torch.rand(n, k, 1), 1.0, 0.1)
    got = {int(p[0]) // 8: (int(c), int(r)) for p, c, r in zip(pairs['prompts'], pairs['chosen'], pairs['rejected'])}
    assert got == {0: (4, 1), 2: (8, 1)}  # prompt 1: all samples tie, so no pair
    assert pairs['stats']['objective/kl'] == 0.0


# ---- PPO

def test_ppo_rewards_and_gae_by_hand():
    """Kills a KL penalty with the wrong sign or left off, the score at the wrong token, a value read past the last
    real token (padding must not bootstrap), and gamma or lambda in the wrong place."""
    score = torch.tensor([1.0, 2.0])
    logp = torch.tensor([[-1.0, -2.0, 0.0], [-1.0, 0.0, 0.0]])
    ref_lp = torch.tensor([[-1.5, -1.0, 0.0], [-0.5, 0.0, 0.0]])
    m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # row 0: two tokens, row 1: one
    rewards, kl = train_rl.ppo_rewards(score, logp, ref_lp, m, beta=0.5)
    # per-token log-ratios: row 0 (0.5, -1), row 1 (-0.5); -0.5 * each, and the score added at the last real token
    assert torch.equal(rewards, torch.tensor([[-0.25, 1.5, 0.0], [2.25, 0.0, 0.0]]))
    assert torch.equal(kl, torch.tensor([-0.5, -0.5]))
    values = torch.tensor([[0.5, 1.0, 7.0], [1.0, 3.0, 0.0]])  # 7 and 3 sit at padding: never read
    adv, ret = train_rl.gae(rewards, values, m, gamma=0.9, lam=0.5)
    # row 0, t = 1: delta = 1.5 + 0.9 * 0 - 1.0 = 0.5 = A_1
    #        t = 0: delta = -0.25 + 0.9 * 1.0 - 0.5 = 0.15, A_0 = 0.15 + 0.9 * 0.5 * 0.5 = 0.375
    # row 1, t = 0: delta = 2.25 + 0.9 * 0 - 1.0 = 1.25 = A_0
    assert torch.allclose(adv, torch.tensor([[0.375, 0.5, 0.0], [1.25, 0.0, 0.0]]))
    assert torch.allclose(ret, torch.tensor([[0.875, 1.5, 0.0], [2.25, 0.0, 0.0]]))  # A + V
    w = train_rl.whiten(adv, m)
    mean, var = 2.125 / 3, ((0.375 - 2.125 / 3) ** 2 + (0.5 - 2.125 / 3) ** 2 + (1.25 - 2.125 / 3) ** 2) / 3
    assert w[0, 0].item() == pytest.approx((0.375 - mean) / math.sqrt(var))
    assert (w * m).sum().item() == pytest.approx(0.0, abs=1e-6) and w[0, 2] == w[1, 1] == w[1, 2] == 0.0


def test_ppo_loss_by_hand():
    """Kills a ratio clipped on the wrong side (min for max), clipping that still passes gradient, a value loss
    without its clip, padding counted in the means, and the value term's weight misplaced."""
    ratios = torch.tensor([[1.5, 0.5], [0.5, 3.0]])
    old = torch.zeros(2, 2)
    logp = ratios.log().requires_grad_()
    adv = torch.tensor([[1.0, 2.0], [-1.0, 5.0]])
    m = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # the last token is padding
    values = torch.tensor([[0.5, 0.1], [-0.3, 9.0]], requires_grad=True)
    returns = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    loss, stats = train_rl.ppo_loss(logp, values, old, old, adv, returns, m, clip=0.2, vf_clip=0.2, vf_coef=0.1)
    # policy, per token max(-A r, -A clip(r, 0.8, 1.2)): max(-1.5, -1.2) = -1.2 (clipped); max(-1.0, -1.6) = -1.0;
    # max(0.5, 0.8) = 0.8 (clipped). Mean over the 3 real tokens: -1.4 / 3
    # value, per token max((V - R)^2, (V_clipped - R)^2), V_clipped = clip(V, -0.2, 0.2) around V_old = 0:
    # max(0.25, 0.64) = 0.64 (clipped); 0.01; max(0.09, 0.04) = 0.09. Half their mean: 0.5 * 0.74 / 3
    assert stats['loss/policy'] == pytest.approx(-1.4 / 3) and stats['loss/value'] == pytest.approx(0.37 / 3)
    assert loss.item() == pytest.approx((-1.4 + 0.1 * 0.37) / 3)
    assert stats['policy/clipfrac'] == pytest.approx(2 / 3) and stats['val/clipfrac'] == pytest.approx(1 / 3)
    loss.backward()
    # only the unclipped tokens pass gradient: d(-A r / 3)/d log pi = -A r / 3 = -2 * 0.5 / 3; padding none
    assert torch.allclose(logp.grad, torch.tensor([[0.0, -1 / 3], [0.0, 0.0]]))
    # d(0.1 * 0.5 (V - R)^2 / 3)/dV = 0.1 (V - R) / 3 where the unclipped term counts; 0 where V is clipped
    assert torch.allclose(values.grad, torch.tensor([[0.0, 0.01 / 3], [-0.01, 0.0]]))


def test_ppo_raises_a_planted_reward_with_kl_zero_at_step_0(tmp_path, monkeypatch):
    rows, out = planted_run(tmp_path, monkeypatch, 'ppo', '--max_iters', '30', '--eval_interval', '1',
                            '--lr', '3e-3', '--batch_size', '32', '--beta', '0.01')
    assert rows[0]['objective/kl'] == 0.0  # the first batch is sampled from the reference itself
    early = sum(r['objective/scores'] for r in rows[:5]) / 5
    late = sum(r['objective/scores'] for r in rows[-5:]) / 5
    assert late > early + 0.1, (early, late)
    for key in ('loss/policy', 'loss/value', 'policy/clipfrac', 'val/clipfrac', 'objective/rlhf_reward', 'entropy'):
        assert math.isfinite(rows[-1][key]), key
    ck = M.load_checkpoint(out, stages=['rl'])
    assert ck['step'] == 30 and set(ck['value_head']) == {'weight', 'bias'}


def test_a_ppo_policy_loads_and_scores_like_any_policy(tmp_path):
    """The value head is saved beside the policy, not in it: eval.py scores a PPO checkpoint and its snapshots as
    it scores any policy, and another stage starts from it."""
    task = dict(E.TASKS['short'])
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    rm = save_tiny(str(tmp_path / 'rm'), tiny_gpt(scalar_head=True), stage='rm', rm_type='global', task=task,
                   reward_mean=0.0)
    out = str(tmp_path / 'ppo')
    args = ['--reward', rm, '--batch_size', '8', '--max_iters', '4', '--eval_interval', '2', '--no_tqdm']
    run('train_rl.py', '--algo', 'ppo', '--init', sft, '--out_dir', out, '--snapshots', *args)
    js = str(tmp_path / 'eval.json')
    run('eval.py', 'score', sft, out, os.path.join(out, 'step_2.pt'), '--task', 'short', '--n_prompts', '8',
        '--json', js, '--device', 'cpu')
    pol = json.load(open(js))['policies']
    assert pol['ppo']['stage'] == 'rl' and pol['ppo']['step'] == 4 and pol['ppo/step_2']['step'] == 2
    assert all(math.isfinite(pol[n]['kl']) and math.isfinite(pol[n]['gold_reward']) for n in ('ppo', 'ppo/step_2'))
    run('train_rl.py', '--algo', 'rloo', '--init', out, '--out_dir', str(tmp_path / 'rloo'), *args)


def test_an_algorithm_without_its_own_step_is_an_error_not_another_algorithm(tmp_path, monkeypatch):
    """Kills the dispatch by `rloo = args.algo == 'rloo'`, under which any third --algo ran online DPO: an entry in
    the table of defaults without its own branch stops before anything is written."""
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt(seed=1))
    rm = save_tiny(str(tmp_path / 'rm'), tiny_gpt(scalar_head=True), stage='rm', rm_type='global', task=TASK,
                   reward_mean=0.0)
    monkeypatch.setitem(train_rl.ALGOS, 'grpo', dict(k=4, lr=1e-4, batch_size=8, min_k=2))
    monkeypatch.setattr(next(a for a in train_rl.p._actions if a.dest == 'algo'), 'choices', list(train_rl.ALGOS))
    out = str(tmp_path / 'grpo')
    monkeypatch.setattr(sys, 'argv', ['train_rl.py', '--algo', 'grpo', '--reward', rm, '--init', sft,
                                      '--out_dir', out, '--n_prompts', '16', '--no_tqdm'])
    with pytest.raises(ValueError, match='--algo grpo: train_rl.py has no training step'):
        train_rl.main()
    assert not os.path.exists(out)
