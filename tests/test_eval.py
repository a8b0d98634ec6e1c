"""eval.py: the gold verifiers, the labeller, the statistics, and the label/score/prefs commands end to end on a
tiny random GPT (vocab 512: the GPT-2 BPE truncated, so the real prompts still work)."""
import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import model as M  # noqa: E402
import eval as E  # noqa: E402

VOCAB = 512


def run(*args):
    # cpu: the same numbers everywhere; one thread: tiny matmuls are slower with two, and far slower when
    # another job holds the cores
    return subprocess.run([sys.executable, os.path.join(ROOT, 'eval.py'), *map(str, args), '--device', 'cpu'],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})


def assert_refused(r, *words):
    """Bad input: non-zero exit, one clear line, no traceback."""
    assert r.returncode != 0, r.stdout
    assert 'Traceback' not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def tiny_ckpt(path, stage='sft', vocab=VOCAB, task=None, seed=0, **extra):
    torch.manual_seed(seed)
    cfg = M.GPTConfig(vocab_size=vocab, n_layer=1, n_head=2, n_embd=32, block_size=40,
                      scalar_head=extra.get('rm_type') == 'global')
    model = M.GPT(cfg)
    M.save_checkpoint(os.path.join(path, 'ckpt.pt'), model=model.state_dict(), model_args=dataclasses.asdict(cfg),
                      config={}, stage=stage, vocab_size=vocab, task=task, step=0, **extra)
    return str(path)


@pytest.fixture(scope='module')
def enc():
    return M.get_tokenizer(VOCAB)


def encode(enc, texts, C=24):
    """Completions (N, C) with EOS and PAD after it, and their masks, like M.sample returns."""
    y, m = torch.full((len(texts), C), M.PAD), torch.zeros(len(texts), C)
    for i, t in enumerate(texts):
        ids = (enc.encode_ordinary(t) + [enc.eos])[:C]
        y[i, :len(ids)], m[i, :len(ids)] = torch.tensor(ids), 1
    return y, m


# ---- the gold verifiers

def test_sentiment_verifier_orders_texts(enc):
    y, m = encode(enc, [" I love this wonderful, happy day.", " the table is made of wood",
                        " This is a terrible, awful, hateful mess."])
    x = torch.tensor([enc.encode_ordinary(" It was a day.")] * 3)  # ends with ".": nothing is joined on
    for name in ('sentiment', 'short'):
        r = E.gold_rewards(E.TASKS[name], enc, x, y, m)
        assert r.shape == (3,) and r.dtype == torch.float
        assert r[0] > 0.5 and r[2] < -0.5 and abs(r[1]) < 0.1
    # tokens after EOS are padding: whatever they are, they do not count
    y2 = y.clone()
    y2[1, m[1].sum().long():] = y[0, 0]
    assert E.gold_rewards(E.TASKS['sentiment'], enc, x, y2, m)[1] == E.gold_rewards(E.TASKS['sentiment'], enc, x, y, m)[1]


def test_rouge_l_by_hand(enc):
    assert E.lcs_len(list('ABCBDAB'), list('BDCABA')) == 4  # the textbook example (BCBA)
    assert E.rouge_l_f1([1, 2, 3, 4], [1, 3, 4, 5]) == pytest.approx(0.75)  # LCS 3, P = R = 3/4
    assert E.rouge_l_f1([1, 2, 3], [3, 2, 1]) == pytest.approx(1 / 3)  # LCS 1, 2*1/(3+3)
    assert E.rouge_l_f1([5, 6], [5, 6]) == 1.0
    assert E.rouge_l_f1([1, 2], [3, 4]) == 0.0 and E.rouge_l_f1([], [1]) == 0.0
    eos = enc.eos
    y = torch.tensor([[1, 2, 3, eos, 7, 7], [9, 9, 9, 9, 9, 9]])
    m = torch.tensor([[1., 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    refs = torch.tensor([[1, 3, eos, 7, 7, 7], [9, eos, 0, 0, 0, 0]])
    ref_m = torch.tensor([[1., 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    r = E.gold_rewards(E.TASKS['overlap'], enc, torch.zeros(2, 8, dtype=torch.long), y, m, refs, ref_m)
    # row 0: [1,2,3] vs [1,3] (EOS, padding out): LCS 2, F1 = 4/5. row 1: six 9s vs one 9: LCS 1, F1 = 2/7
    assert r.tolist() == pytest.approx([0.8, 2 / 7])


# ---- the labeller and the statistics

def test_bt_labels_match_sigmoid():
    n, tau = 20000, 0.1
    diffs = torch.tensor([-0.3, -0.1, 0.0, 0.05, 0.2])
    r_b = torch.rand(n * len(diffs), generator=torch.Generator().manual_seed(1)) * 0.5
    r_a = r_b + diffs.repeat_interleave(n)
    a_wins = E.bt_labels(r_a, r_b, tau, torch.Generator().manual_seed(0)).view(len(diffs), n).double().mean(1)
    want = torch.sigmoid(diffs.double() / tau)
    assert (a_wins - want).abs().max() < 4 * math.sqrt(0.25 / n)  # 4 standard errors
    assert torch.sigmoid(torch.tensor(0.2 / tau)) == pytest.approx(0.88, abs=0.01)  # the help text's claim
    # tau = 0: the higher reward always wins; exact ties are a seeded fair coin
    r_a, r_b = torch.tensor([1., 0., 0.5] * 1000), torch.tensor([0., 1., 0.5] * 1000)
    w = E.bt_labels(r_a, r_b, 0, torch.Generator().manual_seed(0)).view(1000, 3)
    assert w[:, 0].all() and not w[:, 1].any() and 0.4 < w[:, 2].float().mean() < 0.6
    assert torch.equal(w.flatten(), E.bt_labels(r_a, r_b, 0, torch.Generator().manual_seed(0)))


def test_win_rate_ties_count_half_and_ci():
    assert E.win_rate(torch.tensor([1., 0., 0.5, 0.3]), torch.tensor([0., 0., 1., 0.3])).tolist() == [1, .5, 0, .5]
    mean, half = E.mean_ci(torch.tensor([0., 1., 0., 1.]))
    assert mean == 0.5 and half == pytest.approx(1.96 * math.sqrt(1 / 3) / 2)
    assert E.mean_ci(torch.tensor([0.25])) == (0.25, 0.0)


def test_shape_stats(enc):
    eos = enc.eos
    y = torch.tensor([[5, 6, 5, 6], [5, eos, 0, 0]])
    m = torch.tensor([[1., 1, 1, 1], [1, 1, 0, 0]])
    s = E.shape_stats(y, m, eos)
    # bigrams (5,6) (6,5) (5,6): 2 unique of 3; row 1 has one real non-EOS token, no bigram
    assert s == {'length': 3.0, 'eos_rate': 0.5, 'distinct_2': pytest.approx(2 / 3)}


# ---- the commands end to end on a tiny random GPT

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp('eval')
    sent = dict(E.TASKS['sentiment'])
    out = {'dir': d, 'sft': tiny_ckpt(d / 'sft'),
           'rm': tiny_ckpt(d / 'rm', stage='rm', task=sent, rm_type='global', seed=1),
           'rm_short': tiny_ckpt(d / 'rm_short', stage='rm', task=dict(E.TASKS['short']), rm_type='global'),
           'rm_vocab': tiny_ckpt(d / 'rm_vocab', stage='rm', vocab=600, task=sent, rm_type='global')}
    # a "dpo" policy equal to its reference: its implicit reward is exactly 0 on every pair
    out['dpo'] = tiny_ckpt(d / 'dpo', stage='dpo', task=sent, beta=0.1, ref=out['sft'])
    r = run('label', '--policy', out['sft'], '--task', 'sentiment', '--n_pairs', 20, '--n_val', 10,
            '--out', d / 'prefs.pt', '--batch_size', 16)
    assert r.returncode == 0, r.stderr
    out['label_stdout'] = r.stdout
    return out


def test_label_writes_a_valid_preference_file(runs, enc):
    path = runs['dir'] / 'prefs.pt'
    prefs = M.load_prefs(str(path), task=E.TASKS['sentiment'], vocab_size=VOCAB)
    assert prefs['tau'] == 0.1 and prefs['seed'] == 0 and prefs['policy'] == runs['sft']
    assert 'tied' in runs['label_stdout'] and 'wrote' in runs['label_stdout']
    for split, n in (('train', 20), ('val', 10)):
        d = prefs[split]
        assert d['prompts'].shape == (n, 8) and d['chosen'].shape == (n, 24) and d['rejected'].shape == (n, 24)
        assert all(v.size(0) == n for v in d.values() if isinstance(v, torch.Tensor))
        assert len(set(d['prompt_idx'].tolist())) == n  # one pair per distinct prompt
        for y, m in ((d['chosen'], d['chosen_mask']), (d['rejected'], d['rejected_mask'])):
            assert m.dtype == torch.float and ((m == 0) | (m == 1)).all()
            assert (y[m == 0] == M.PAD).all()  # PAD after EOS
            assert (m[:, 1:] <= m[:, :-1]).all()  # the mask is a prefix
            n_real = m.sum(1).long()
            stopped = n_real < 24
            assert (y[stopped, n_real[stopped] - 1] == enc.eos).all()  # a completion stops at its EOS
        # the stored gold rewards are the verifier's
        sent = E.TASKS['sentiment']
        assert torch.equal(d['r_chosen'], E.gold_rewards(sent, enc, d['prompts'], d['chosen'], d['chosen_mask']))
        assert torch.equal(d['r_rejected'], E.gold_rewards(sent, enc, d['prompts'], d['rejected'], d['rejected_mask']))
    p_train, _, _ = M.get_prompts(VOCAB, 'train')
    assert torch.equal(prefs['train']['prompts'], p_train[prefs['train']['prompt_idx']])


def test_score_policy_equal_to_reference(runs, capsys):
    js = runs['dir'] / 'eval.json'
    r = run('score', runs['sft'], '--ref', runs['sft'], '--task', 'sentiment', '--n_prompts', 16, '--json', js,
            '--best_of', 3, '--rm', runs['rm'])
    assert r.returncode == 0, r.stderr
    out = json.loads(js.read_text())
    assert out['n_prompts'] == 16 and out['task'] == E.TASKS['sentiment'] and 'k1' in out['kl_estimator']
    s = out['policies']['sft']
    assert s['kl'] == 0.0 and s['kl_ci'] == 0.0  # the policy is the reference: exactly 0
    assert s['win_vs_ref'] == 0.5  # against its own samples, everything ties
    assert 0 <= s['win_vs_human'] <= 1 and s['n_completions'] == 32 and len(s['examples']) == 3
    assert s['reward_minus_beta_kl'] == pytest.approx(s['gold_reward'])
    h = out['policies']['human_reference']
    assert h['win_vs_human'] == 0.5 and h['kl'] is None
    assert h['win_vs_ref'] == pytest.approx(1 - s['win_vs_human'])  # the same comparisons from the other side
    b = out['policies']['sft+bo3']
    assert b['n_completions'] == 16 and b['kl'] == pytest.approx(math.log(3) - 2 / 3)
    assert b['gold_reward'] <= b['gold_oracle_best_of_n'] + 1e-9
    assert '| sft |' in r.stdout and 'human_reference' in r.stdout
    # the table subcommand reads it back
    E.main(['table', str(js)])
    assert '| sft+bo3 |' in capsys.readouterr().out


def test_prefs_of_dpo_implicit_and_rm(runs):
    js = runs['dir'] / 'prefs_dpo.json'
    r = run('prefs', runs['dpo'], '--prefs', runs['dir'] / 'prefs.pt', '--json', js)
    assert r.returncode == 0, r.stderr
    out = json.loads(js.read_text())
    # pi = pi_ref: every implicit margin is 0, so the log-likelihood is log 1/2 and the accuracy a coin
    assert out['n_pairs'] == 10 and out['loglik'] == pytest.approx(math.log(0.5))
    assert out['acc'] in (None, 0.5)
    r = run('prefs', runs['rm'], '--prefs', runs['dir'] / 'prefs.pt')
    assert r.returncode == 0 and '10 pairs' in r.stdout and 'tied' in r.stdout, r.stderr


def test_bad_input_is_refused(runs):
    prefs = runs['dir'] / 'prefs.pt'
    before = prefs.read_bytes()
    assert_refused(run('prefs', runs['rm_short'], '--prefs', prefs), 'task')
    assert_refused(run('prefs', runs['rm_vocab'], '--prefs', prefs), 'vocab_size')
    assert_refused(run('label', '--policy', runs['rm'], '--out', prefs), 'rm')  # not a policy
    assert_refused(run('label', '--policy', runs['sft'], '--n_pairs', 10 ** 6, '--out', prefs, '--no_tqdm'),
                   '--n_pairs')  # found out while sampling: no progress bar, so the refusal is the only line
    assert prefs.read_bytes() == before  # the good file is untouched


def test_same_seed_same_numbers(runs):
    """eval.py is deterministic on CPU: the same command twice gives the same JSON (bar the wall time)."""
    outs = []
    for i in range(2):
        js = runs['dir'] / f'det{i}.json'
        assert run('score', runs['sft'], runs['dpo'], '--ref', runs['sft'], '--task', 'sentiment',
                   '--n_prompts', 8, '--json', js).returncode == 0
        d = json.loads(js.read_text())
        d.pop('seconds')
        outs.append(d)
    assert outs[0] == outs[1]


def score_json(path, split, rows, **top):
    """A score JSON as eval.py score writes it, cut down to what eval.py frontier reads; rows: name -> (stage, kl,
    gold, step)."""
    pol = {n: {'stage': st, 'kl': kl, 'gold_reward': g, 'gold_reward_ci': 0.0, 'step': step}
           for n, (st, kl, g, step) in rows.items()}
    pol['human_reference'] = {'stage': 'human', 'kl': None, 'gold_reward': 0.0}
    path.write_text(json.dumps({'task': {'name': 'sentiment'}, 'split': split, 'policies': pol, **top}))
    return str(path)


def test_frontier_chooses_on_val_and_reports_test(tmp_path, capsys):
    """eval.py frontier: within a KL budget the val-best checkpoint is reported with its test numbers, even when
    another one is better on test; SFT (KL 0) is every method's fallback."""
    def js(split, rows):
        return score_json(tmp_path / f'{split}.json', split, rows)
    val = js('val', {'sft': ('sft', 0.0, 0.05, 0), 'dpo/step_1': ('dpo', 2.0, 0.30, 1),
                     'dpo/step_2': ('dpo', 2.5, 0.20, 2), 'rloo/step_1': ('rl', 12.0, 0.90, 1)})
    test = js('test', {'sft': ('sft', 0.0, 0.04, 0), 'dpo/step_1': ('dpo', 2.1, 0.10, 1),
                       'dpo/step_2': ('dpo', 2.4, 0.50, 2), 'rloo/step_1': ('rl', 11.0, 0.80, 1)})
    E.main(['frontier', '--val', val, '--test', test, '--budgets', '3', '30', '--out', str(tmp_path / 'f.png')])
    rows = {l.split(' | ')[0][2:]: l for l in capsys.readouterr().out.splitlines() if l.startswith('| ')}
    assert rows['dpo'] == '| dpo | +0.100 (KL 2.1, dpo/step_1) | +0.100 (KL 2.1, dpo/step_1) |'
    assert rows['rloo'] == '| rloo | +0.040 (KL 0.0, sft) | +0.800 (KL 11.0, rloo/step_1) |'
    assert os.path.getsize(tmp_path / 'f.png') > 0
    with pytest.raises(ValueError, match='scored on test'):  # the splits swapped: never choose on test
        E.main(['frontier', '--val', test, '--test', val, '--out', str(tmp_path / 'g.png')])


def test_frontier_refuses_mismatched_or_broken_scores_before_writing(tmp_path):
    """Kills a frontier that reads val and test of different tasks or seeds, a NaN gold reward or KL (max() and <=
    pass NaN by silently), a figure named other than .png, or a budget <= 0: each is refused, no figure written."""
    rows = {'sft': ('sft', 0.0, 0.05, 0), 'dpo/step_1': ('dpo', 2.0, 0.30, 1)}
    val = score_json(tmp_path / 'val.json', 'val', rows, seed=1)
    test = score_json(tmp_path / 'test.json', 'test', rows, seed=1)
    png = str(tmp_path / 'f.png')
    nan_gold = {**rows, 'dpo/step_1': ('dpo', 2.0, math.nan, 1)}
    nan_kl = {**rows, 'dpo/step_1': ('dpo', math.nan, 0.3, 1)}
    bad = [('seed 1; --test files of task', val, score_json(tmp_path / 't2.json', 'test', rows, seed=2), png, '3'),
           ("task 'sentiment'", val, score_json(tmp_path / 't3.json', 'test', rows, seed=1, task={'name': 'short'}),
            png, '3'),
           ('gold reward nan', score_json(tmp_path / 'v4.json', 'val', nan_gold, seed=1), test, png, '3'),
           ('KL nan: not numbers', val, score_json(tmp_path / 't5.json', 'test', nan_kl, seed=1), png, '3'),
           ('--out', val, test, str(tmp_path / 'f.pdf'), '3'),
           ('--budgets 0.0 10.0', val, test, png, '0')]
    for match, v, t, out, budget in bad:
        with pytest.raises(ValueError, match=match):
            E.main(['frontier', '--val', v, '--test', t, '--out', out, '--budgets', budget, '10'])
        assert not any(f.startswith('f.') for f in os.listdir(tmp_path)), match
    mixed = score_json(tmp_path / 'v6.json', 'val', rows, seed=2)  # two val files of different seeds
    with pytest.raises(ValueError, match='mixes tasks, splits or seeds'):
        E.main(['frontier', '--val', val, mixed, '--test', test, '--out', png])
    E.main(['frontier', '--val', val, '--test', test, '--out', png])  # consistent files: drawn
    assert os.path.getsize(png) > 0
