"""The preference losses, DPO and the reward models on a planted preference file."""
import math

import torch

from conftest import M, tiny_gpt, save_tiny, run, planted_prefs


def test_bt_and_dpo_losses_equal_hand_computations():
    rc, rr = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    want = -(math.log(1 / (1 + math.exp(-1))) + math.log(1 / (1 + math.exp(1)))) / 2
    assert abs(M.bt_loss(rc, rr).item() - want) < 1e-6
    # DPO: beta * ((pi_c - ref_c) - (pi_r - ref_r)) = 0.5 * ((-3 + 5) - (-4 + 4)) = 1
    loss, r_c, r_r = M.dpo_loss(torch.tensor([-3.0]), torch.tensor([-4.0]), torch.tensor([-5.0]),
                                torch.tensor([-4.0]), beta=0.5)
    assert abs(loss.item() - math.log(1 + math.exp(-1))) < 1e-6
    assert r_c.item() == 1.0 and r_r.item() == 0.0


def test_dpo_at_initialisation_is_log2_with_zero_rewards(tmp_path):
    prefs = M.load_prefs(planted_prefs(str(tmp_path / 'p.pt')))
    policy, ref = tiny_gpt(), M.frozen(tiny_gpt())
    batch = M.with_ref_logprobs(prefs['train'], ref, 'cpu')
    lp_c, lp_r = M.pair_logprobs(policy, batch)
    loss, r_c, r_r = M.dpo_loss(lp_c, lp_r, batch['ref_chosen'], batch['ref_rejected'], beta=0.1)
    stats = M.dpo_stats(r_c, r_r)
    assert abs(loss.item() - math.log(2)) < 1e-6
    assert stats['rewards/chosen'] == 0 and stats['rewards/rejected'] == 0 and stats['rewards/margins'] == 0


def test_reward_of_ignores_padding():
    rm = tiny_gpt(scalar_head=True).eval()
    x, y = torch.randint(0, 511, (3, 8)), torch.randint(0, 511, (3, 5))
    m = torch.tensor([[1., 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    short = M.reward_of(rm, 'global', x, y, m)
    for extra in (1, 7):  # more padding columns, filled with junk ids, change nothing
        y2 = torch.cat([y * m.long(), torch.randint(0, 511, (3, extra))], 1)
        m2 = torch.cat([m, torch.zeros(3, extra)], 1)
        assert torch.allclose(M.reward_of(rm, 'global', x, y2, m2), short, atol=1e-6)
    # and it reads the last real token: changing that token changes the score
    y3 = y.clone()
    y3[1, 2] = (y3[1, 2] + 1) % 511
    assert not torch.isclose(M.reward_of(rm, 'global', x, y3, m)[1], short[1])


def pair_accuracy(ckpt_dir, prefs, rm_type):
    ck = M.load_checkpoint(ckpt_dir)
    model = M.model_from_checkpoint(ck).eval()
    with torch.no_grad():
        c, r = M.pair_rewards(model, prefs['train'], rm_type)
    return (c > r).float().mean().item()


def test_training_raises_pair_accuracy_for_dpo_and_both_rm_types(tmp_path):
    pf = planted_prefs(str(tmp_path / 'p.pt'))
    prefs = M.load_prefs(pf)
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt(seed=3))
    before = pair_accuracy(sft, prefs, 'local')
    run('train_mle.py', '--loss', 'dpo', '--prefs', pf, '--ref', sft, '--out_dir', str(tmp_path / 'dpo'),
        '--lr', '3e-3', '--epochs', '4', '--batch_size', '16', '--no_tqdm')
    # DPO's implicit reward: beta * (log pi - log pi_ref); the reference is the tiny sft model
    ref_c, ref_r = M.pair_logprobs(M.model_from_checkpoint(M.load_checkpoint(sft)).eval(), prefs['train'])
    pol = M.model_from_checkpoint(M.load_checkpoint(str(tmp_path / 'dpo'), stages=['dpo'])).eval()
    with torch.no_grad():
        c, r = M.pair_logprobs(pol, prefs['train'])
    assert ((c - ref_c) > (r - ref_r)).float().mean() > 0.9
    for rm_type, lr in (('global', '3e-3'), ('local', '3e-3')):
        out = str(tmp_path / f'rm_{rm_type}')
        run('train_rm.py', '--prefs', pf, '--init', sft, '--rm_type', rm_type, '--out_dir', out, '--lr', lr,
            '--epochs', '4', '--batch_size', '16', '--no_tqdm')
        after = pair_accuracy(out, prefs, rm_type)
        assert after > 0.9 and after > before + 0.2, (rm_type, before, after)
        assert M.load_checkpoint(out, stages=['rm'])['reward_mean'] is not None
