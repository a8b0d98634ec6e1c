"""What the frontier experiment needs from the stages: snapshots along training that load and score, labels
with ties dropped and prompts reused, a labeller tau set by agreement, VADER reading a completion in place,
and best-of-n."""
import json
import math
import os
import sys

import pytest
import torch

from conftest import M, planted_prefs, run as run_strs, save_tiny, tiny_gpt
import eval as E

VOCAB = 512


def run(*args, check=True):
    return run_strs(*map(str, args), check=check)


@pytest.fixture(scope='module')
def enc():
    return M.get_tokenizer(VOCAB)


# ---- VADER reads a completion where it stands

def test_a_completion_that_starts_mid_word_is_read_with_its_word(enc):
    assert E.in_place(' I treat', 'ly good') == 'treatly good'
    assert E.in_place(' I treat', ' ly') == ' ly'  # a new word: nothing to join
    assert E.in_place(' I said:', 'ly') == 'ly'  # the prompt ends in punctuation
    assert E.vader(['ly'])[0] > 0.5 and E.vader(['treatly'])[0] == 0.0  # the exploit the join takes away
    x = torch.tensor([enc.encode_ordinary(' I treat')] * 2)
    ids = [enc.encode_ordinary('ly'), enc.encode_ordinary(' ly')]
    y, m = torch.full((2, 4), M.PAD), torch.zeros(2, 4)
    for i, t in enumerate(ids):
        y[i, :len(t) + 1], m[i, :len(t) + 1] = torch.tensor(t + [enc.eos]), 1
    r = E.gold_rewards(E.TASKS['sentiment'], enc, x, y, m)
    assert r[0] == 0.0 and r[1] == pytest.approx(E.vader(['ly'])[0])


# ---- the labeller: tau by agreement, ties dropped, prompts reused

def test_tau_for_agreement_inverts_the_expected_agreement():
    # one gap of 0.2: agreement sigmoid(0.2 / tau), so asking for sigmoid(2) must give tau = 0.1
    assert E.tau_for_agreement(torch.full((5,), 0.2), torch.sigmoid(torch.tensor(2.0)).item()) == pytest.approx(0.1)
    gaps = torch.tensor([0.01, 0.05, 0.5, 1.0])
    tau = E.tau_for_agreement(gaps, 0.9)
    assert torch.sigmoid(gaps.double() / tau).mean().item() == pytest.approx(0.9, abs=1e-9)
    with pytest.raises(ValueError):
        E.tau_for_agreement(gaps, 0.4)


def test_label_drops_ties_reuses_prompts_and_sets_tau(tmp_path, enc):
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    args = ['eval.py', 'label', '--policy', sft, '--task', 'short', '--device', 'cpu', '--batch_size', '64']
    big = str(tmp_path / 'big.pt')
    r = run(*args, '--n_pairs', 60, '--n_val', 10, '--drop_ties', '--max_per_prompt', 3, '--agreement', 0.9,
            '--out', big)
    assert 'tie on the gold reward (dropped)' in r.stdout
    p = M.load_prefs(big)
    d = p['train']
    assert d['n_pairs'] == 60 and (d['r_chosen'] != d['r_rejected']).all()  # no tie is kept
    assert d['n_drawn'] > 60 and d['tie_rate'] > 0  # a random tiny GPT's 2-token completions tie often
    gaps = (d['r_chosen'] - d['r_rejected']).abs().double()
    assert p['tau'] == pytest.approx(E.tau_for_agreement(gaps, 0.9))  # tau from the train pairs' own gaps
    assert p['agreement_target'] == 0.9 and p['drop_ties']
    # the stored rewards are the verifier's, each against its own prompt (reused prompts included)
    p_train, _, _ = M.get_prompts(VOCAB, 'train', 8, 2)
    assert torch.equal(d['prompts'], p_train[d['prompt_idx']])
    assert torch.equal(d['r_chosen'], E.gold_rewards(E.TASKS['short'], enc, d['prompts'], d['chosen'], d['chosen_mask']))
    # nested: asking for fewer pairs gives the first ones of the larger set, the same pairs in the same order
    small = str(tmp_path / 'small.pt')
    run(*args, '--n_pairs', 20, '--n_val', 10, '--drop_ties', '--max_per_prompt', 3, '--tau', p['tau'], '--out', small)
    s = M.load_prefs(small)['train']
    for k in M.PREF_KEYS:
        assert torch.equal(s[k], d[k][:20]), k
    # a request the prompts cannot meet is one clear line, and nothing is written
    r = run(*args, '--n_pairs', 10 ** 5, '--drop_ties', '--out', str(tmp_path / 'no.pt'), '--no_tqdm', check=False)
    assert r.returncode == 2 and 'untied' in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / 'no.pt')


# ---- best-of-n

def test_best_of_n_is_the_rms_argmax_and_n1_is_plain_sampling():
    s = torch.tensor([[0.1, 0.9, 0.3, 2.0], [5.0, 1.0, 7.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert E.best_of_n(s, 1).tolist() == [0, 0, 0]  # n = 1: the first sample, whatever the RM says
    assert E.best_of_n(s, 2).tolist() == [1, 0, 0]
    assert E.best_of_n(s, 4).tolist() == [3, 2, 0]  # a tie goes to the first


# ---- snapshots along training load and score

def test_snapshots_along_training_load_and_score(tmp_path):
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    prefs = planted_prefs(str(tmp_path / 'prefs.pt'), task=dict(E.TASKS['short']), C=2)
    out = str(tmp_path / 'dpo')
    run('train_mle.py', '--loss', 'dpo', '--prefs', prefs, '--ref', sft, '--out_dir', out, '--epochs', '3',
        '--batch_size', '16', '--eval_interval', '4', '--lr', '1e-3', '--snapshots', '--no_tqdm')
    steps = sorted(int(f[5:-3]) for f in os.listdir(out) if f.startswith('step_'))
    assert steps == [4, 8, 12]  # 64 pairs / 16 = 4 steps an epoch, one snapshot each
    final, snap = M.load_checkpoint(out), M.load_checkpoint(os.path.join(out, 'step_12.pt'), stages=['dpo'])
    assert 'optimizer' not in snap and snap['step'] == 12 and snap['task'] == final['task']
    assert all(torch.equal(snap['model'][k], v) for k, v in final['model'].items())
    first = M.load_checkpoint(os.path.join(out, 'step_4.pt'))
    assert any(not torch.equal(first['model'][k], v) for k, v in final['model'].items())  # it trained on
    # eval.py scores them by name, each at its own KL from the reference; the SFT at KL 0 with best-of-n
    rm = save_tiny(str(tmp_path / 'rm'), tiny_gpt(scalar_head=True), stage='rm', rm_type='global',
                   task=dict(E.TASKS['short']), reward_mean=0.0)
    js = str(tmp_path / 'eval.json')
    run('eval.py', 'score', sft, *(os.path.join(out, f'step_{s}.pt') for s in steps), '--task', 'short',
        '--n_prompts', 16, '--split', 'val', '--json', js, '--best_of', 4, '--rm', rm, '--device', 'cpu')
    pol = json.load(open(js))['policies']
    assert {'dpo/step_4', 'dpo/step_8', 'dpo/step_12', 'sft+bo1', 'sft+bo2', 'sft+bo4'} <= set(pol)
    assert [pol[f'dpo/step_{s}']['step'] for s in steps] == steps
    assert all(pol[f'dpo/step_{s}']['kl'] != 0 for s in steps)  # scored against the reference, not as it
    assert pol['sft+bo1']['kl'] == 0.0 and pol['sft+bo4']['kl'] == pytest.approx(math.log(4) - 3 / 4)
    assert pol['sft+bo1']['n_completions'] == 16


def test_early_snapshots_fill_in_between_eval_points_up_to_a_step(tmp_path):
    """--early_snapshots EVERY UNTIL: the small-N runs of experiments/data_efficiency_v2.py pass their KL budgets
    within a few eval intervals, so they keep a snapshot every few steps early on."""
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    prefs = planted_prefs(str(tmp_path / 'prefs.pt'), task=dict(E.TASKS['short']), C=2)
    args = ('train_mle.py', '--loss', 'dpo', '--prefs', prefs, '--ref', sft, '--epochs', '3', '--batch_size', '16',
            '--eval_interval', '4', '--lr', '1e-3', '--no_tqdm')
    out = str(tmp_path / 'dpo')
    run(*args, '--out_dir', out, '--snapshots', '--early_snapshots', '1', '3')
    steps = sorted(int(f[5:-3]) for f in os.listdir(out) if f.startswith('step_'))
    assert steps == [1, 2, 3, 4, 8, 12]
    snaps = [M.load_checkpoint(os.path.join(out, f'step_{s}.pt'), stages=['dpo']) for s in (1, 2)]
    assert [c['step'] for c in snaps] == [1, 2] and 'optimizer' not in snaps[0]
    assert any(not torch.equal(snaps[0]['model'][k], v) for k, v in snaps[1]['model'].items())  # one step apart
    assert [json.loads(line)['step'] for line in open(os.path.join(out, 'log.jsonl'))] == [4, 8, 12]  # no extra evals
    for bad, why in ((('--snapshots', '--early_snapshots', '0', '3'), 'two numbers >= 1'),
                     (('--early_snapshots', '1', '3'), 'needs --snapshots')):
        r = run(*args, '--out_dir', str(tmp_path / 'bad'), *bad, check=False)
        assert r.returncode != 0 and why in r.stderr and not os.path.exists(tmp_path / 'bad')


# ---- the protocol: the val-best checkpoint within the KL budget, reported on test

def test_the_budget_choice_uses_val_only_and_counts_sft_as_a_candidate():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import report

    def row(split, run, name, kl, gold, method=None, best_of=None):
        return {'task': 't', 'seed': 1, 'split': split, 'run': run, 'name': name, 'kl': kl, 'gold_reward': gold,
                'method': method or run.rsplit('_', 1)[0], 'best_of': best_of}
    rows = []
    for split, flip in (('val', 1), ('test', -1)):  # test golds run the other way: a test-chosen pick would differ
        rows += [row(split, 'bon', 'sft+bo1', 0.0, 0.0, 'best_of_n', 1),
                 row(split, 'dpo_b0.1', 'a', 0.5, flip * 0.2), row(split, 'dpo_b0.1', 'b', 2.0, flip * 0.5),
                 row(split, 'dpo_b0.03', 'c', 8.0, flip * 0.4)]
    assert report.choose(rows, 't', 1, 'dpo', 1)['name'] == 'a'
    assert report.choose(rows, 't', 1, 'dpo', 3)['name'] == 'b'
    pick = report.choose(rows, 't', 1, 'dpo', 10)
    assert pick['name'] == 'b' and pick['split'] == 'test' and pick['gold_reward'] == -0.5  # val-best, test numbers
    # every checkpoint worse than SFT on val: SFT itself is the choice
    worse = [dict(r, gold_reward=-1.0) if r['run'] != 'bon' else r for r in rows]
    assert report.choose(worse, 't', 1, 'dpo', 10)['name'] == 'sft+bo1'
    assert report.choose(rows, 't', 1, 'rloo', 10) is None  # a method with no records


# ---- an ablation: one frontier run at a new setting, its own records

def test_an_ablation_is_the_frontier_command_with_flags_appended():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import frontier as F
    jobs = F.ablation('dpo_b0.1', '--beta 0.3', 'dpo_beta0.3', 'sentiment', 1337)
    by_name = {name: (deps, cmd, rec) for name, deps, cmd, rec in jobs}
    d = 'out/ablations/dpo_beta0.3/seed1337/sentiment'
    deps, cmd, rec = by_name[f'{d}/dpo_beta0.3']
    base = {n: c for n, _, c, _ in F.jobs()}['out/frontier/seed1337/sentiment/dpo_b0.1']
    assert cmd == base + ' --beta 0.3' and rec is None  # the frontier's command, the last --beta wins
    assert {'out/frontier/seed1337/sft', 'out/frontier/seed1337/sentiment/label'} <= set(by_name)  # what it needs
    assert 'out/frontier/seed1337/sentiment/rm' not in by_name  # and nothing more
    label = by_name['out/frontier/seed1337/sentiment/label'][1]  # rebuilt labels never overwrite the frontier's record
    assert '--json results/ablations/dpo_beta0.3/labels_sentiment_seed1337.json' in label and 'results/frontier' not in label
    _, score, rec = by_name[f'{d}/score_test']
    assert score.endswith(f'SNAPSHOTS:{d}/dpo_beta0.3') and '--split test' in score
    assert rec == ('sentiment', 1337, 'dpo_beta0.3', 'test', 'dpo_beta0.3', '--beta 0.3')
    assert F.record_path('results/ablations/dpo_beta0.3', *rec) == \
        'results/ablations/dpo_beta0.3/sentiment_seed1337_dpo_beta0.3_test.jsonl'
    for bad in (('label', 'x'), ('score_dpo_b0.1_val', 'x'), ('dpo_b0.1', 'a/b')):  # not a training run; a bad name
        with pytest.raises(SystemExit):
            F.ablation(bad[0], '', bad[1], 'sentiment', 1337)


def test_an_ablation_record_carries_its_own_method(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import frontier as F
    js = tmp_path / 'eval.json'
    js.write_text(json.dumps({'policies': {'human_reference': {'stage': 'human'},
                                           'dpo_beta0.3/step_63': {'stage': 'dpo', 'kl': 5.0, 'gold_reward': 0.2}}}))
    rows = F.records(str(js), 'sentiment', 1337, 'dpo_beta0.3', 'val', 'dpo_beta0.3', '--beta 0.3')
    assert [(r['method'], r['setting']) for r in rows] == [('human', None), ('dpo_beta0.3', '--beta 0.3')]
    plain = F.records(str(js), 'sentiment', 1337, 'dpo_beta0.3', 'val')  # without: the run's name is split
    assert (plain[1]['method'], plain[1]['setting']) == ('dpo', 'beta0.3')


# ---- a rerun on a fresh clone must agree with what the records were made from

def test_a_rerun_that_disagrees_with_its_committed_output_fails_and_keeps_it(tmp_path):
    """Kills a runner that lets a relabelling on another machine (another SFT) overwrite the label statistics,
    or that flags a rerun whose only difference is its throughput."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import frontier as F
    res, job, stats = str(tmp_path / 'res'), str(tmp_path / 'job'), tmp_path / 'res' / 'labels.json'
    stats.parent.mkdir()
    write = "python -c \"import sys; open(sys.argv[2], 'w').write(sys.argv[3])\" --json {} '{}'".format
    stats.write_text('{"tau": 1.5, "pairs_per_s": 3.0}')
    assert F.run_job(job, write(stats, '{"tau": 1.5, "pairs_per_s": 7.25}'), None, print, res)  # throughput aside
    assert os.path.exists(f'{job}/DONE')
    os.remove(f'{job}/DONE')
    assert not F.run_job(job, write(stats, '{"tau": 1.25, "pairs_per_s": 7.25}'), None, print, res)
    assert stats.read_text() == '{"tau": 1.5, "pairs_per_s": 7.25}'  # what the records were made from, kept
    assert open(f'{job}/rerun_labels.json').read() == '{"tau": 1.25, "pairs_per_s": 7.25}'
    assert not os.path.exists(f'{job}/DONE')  # so nothing that depends on it runs
