"""What the data-efficiency sweeps need: nested subsets of one labelled set (--n_pairs), an RM that ends at its
best held-out likelihood (--keep_best: the first pass's, whose RMs H5's best-of-N reading shows), several RMs
reranking the same best-of-N samples, the val-only choice of the test checkpoint, and the pairs multiplier's
interpolation; then the second pass's protocol."""
import json
import math
import os
import sys

import pytest
import torch

from conftest import M, planted_prefs, run as run_strs, save_tiny, tiny_gpt
import eval as E

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
import data_efficiency as DE  # noqa: E402
import report_common  # noqa: E402
import report_data_efficiency as report_de  # noqa: E402
import report_data_efficiency_v2 as report_de2  # noqa: E402
import report_hypotheses  # noqa: E402


def run(*args, check=True):
    return run_strs(*map(str, args), check=check)


def refused(r, *words):
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and all(w in r.stderr for w in words), r.stderr


# ---- nested subsets: N pairs are the first N of one labelled set, ties never counted

def test_n_pairs_takes_the_first_n_untied_pairs_of_the_file(tmp_path):
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    prefs = str(tmp_path / 'prefs.pt')
    run('eval.py', 'label', '--policy', sft, '--task', 'short', '--device', 'cpu', '--batch_size', 64, '--n_pairs', 40,
        '--n_val', 10, '--drop_ties', '--max_per_prompt', 3, '--agreement', 0.9, '--out', prefs)
    full = M.load_prefs(prefs)
    assert full['train']['n_drawn'] > 40  # some pairs tied and were drawn but not kept
    for n in (10, 25):
        sub = M.load_prefs(prefs, n_train=n)
        assert sub['train']['prompts'].size(0) == n and (sub['train']['r_chosen'] != sub['train']['r_rejected']).all()
        for k in M.PREF_KEYS:
            assert torch.equal(sub['train'][k], full['train'][k][:n])
        assert all(torch.equal(sub['val'][k], full['val'][k]) for k in M.PREF_KEYS)  # val never shrinks
    with pytest.raises(ValueError, match='has 40 train pairs'):
        M.load_prefs(prefs, n_train=41)
    # the stages read it: DPO on 16 pairs at 8 a step makes 2 steps an epoch
    out = str(tmp_path / 'dpo')
    r = run('train_mle.py', '--loss', 'dpo', '--prefs', prefs, '--ref', sft, '--n_pairs', 16, '--batch_size', 8,
            '--out_dir', out, '--no_tqdm')
    assert M.load_checkpoint(out)['step'] == 2, r.stdout
    refused(run('train_rm.py', '--prefs', prefs, '--init', sft, '--n_pairs', 99, '--out_dir', str(tmp_path / 'rm'),
                check=False), '--n_pairs 99', '40 train pairs')


# ---- the RM can end at its best held-out preference likelihood

def test_keep_best_ends_at_the_best_val_snapshot(tmp_path):
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    prefs = planted_prefs(str(tmp_path / 'prefs.pt'))
    out = str(tmp_path / 'rm')
    args = ('train_rm.py', '--prefs', prefs, '--init', sft, '--out_dir', out, '--no_tqdm', '--batch_size', 16,
            '--max_iters', 24, '--eval_interval', 4, '--lr', 3e-2)  # a rate high enough to overshoot
    refused(run(*args, '--keep_best', check=False), '--snapshots')
    run(*args, '--keep_best', '--snapshots')
    rows = [json.loads(line) for line in open(f'{out}/log.jsonl')]
    best = max(rows, key=lambda r: r['val_pref_loglik'])['step']
    final, snap = M.load_checkpoint(out), M.safe_load(f'{out}/step_{best}.pt', 'snapshot')
    assert all(torch.equal(snap['model'][k], v) for k, v in final['model'].items())
    assert final['step'] == 24 and final['reward_mean'] is not None  # finished: --resume has nothing left to do


# ---- best-of-N: several RMs rerank one set of samples, each picking its own argmax

def test_several_rms_rerank_the_same_samples(tmp_path):
    task = dict(E.TASKS['short'])
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    rms = [save_tiny(str(tmp_path / f'rm_n{n}'), tiny_gpt(seed=n, scalar_head=True), stage='rm', rm_type='global',
                     task=task, reward_mean=0.0) for n in (1, 2)]
    js = str(tmp_path / 'eval.json')
    run('eval.py', 'score', sft, '--task', 'short', '--n_prompts', 16, '--split', 'val', '--json', js, '--best_of', 8,
        '--rm', *rms, '--device', 'cpu')
    pol = json.load(open(js))['policies']
    for label, path in (('rm_n1', rms[0]), ('rm_n2', rms[1])):
        rows = [pol[f'sft+bo{k}@{label}'] for k in (1, 2, 4, 8)]
        assert all(r['rm'] == path for r in rows)
        scores = [r['rm_score'] for r in rows]
        assert scores == sorted(scores)  # the argmax of more samples never scores lower by its own RM
    # n = 1 is the first sample whatever the RM: the same gold under both
    assert pol['sft+bo1@rm_n1']['gold_reward'] == pol['sft+bo1@rm_n2']['gold_reward']
    # the two RMs are different functions, so somewhere they pick different samples
    assert any(pol[f'sft+bo{k}@rm_n1']['rm_score'] != pol[f'sft+bo{k}@rm_n2']['rm_score'] for k in (2, 4, 8))


# ---- the test checkpoint is chosen on val, SFT included

def test_the_test_checkpoint_is_the_val_best_within_the_budget():
    sft = {'name': 'sft+bo1', 'method': 'best_of_n', 'kl': 0.0, 'gold_reward': 0.1, 'path': 'sft'}
    val = [{'name': 'a', 'method': 'dpo', 'kl': 4.0, 'gold_reward': 0.3, 'path': 'a'},
           {'name': 'b', 'method': 'dpo', 'kl': 12.0, 'gold_reward': 0.9, 'path': 'b'},
           {'name': 'human', 'method': 'human', 'kl': None, 'gold_reward': 2.0, 'path': None}]  # never a candidate
    assert DE.choose(val, sft, budget=10)['path'] == 'a'
    assert DE.choose(val, sft, budget=20)['path'] == 'b'
    assert DE.choose(val, sft, budget=3)['path'] == 'sft'
    assert DE.choose([dict(r, gold_reward=0.0) for r in val], sft, budget=20)['path'] == 'sft'


# ---- the pairs multiplier: where a curve reaches a target, linear in log N

def test_pairs_needed_interpolates_in_log_n():
    ns, v = [250, 1000, 4000], [0.1, 0.3, 0.5]
    assert report_de.pairs_needed(ns, v, 0.3) == (pytest.approx(1000), '')
    n, sign = report_de.pairs_needed(ns, v, 0.4)  # halfway between 1000 and 4000 in log N: 2000
    assert sign == '' and n == pytest.approx(2000)
    assert report_de.pairs_needed(ns, v, 0.05) == (250, '<')
    assert report_de.pairs_needed(ns, v, 0.6) == (4000, '>')
    assert report_de.pairs_needed([250, 500, 1000], [0.2, 0.1, 0.4], 0.25) == pytest.approx((math.sqrt(500 * 1000), ''))


def test_the_multiplier_on_hand_made_curves():
    # DPO gains 0.1 per doubling from 0.1 at N = 250; RLOO sits 0.2 above it: DPO needs 4x the pairs
    ns = (250, 500, 1000, 2000, 4000, 8000)
    dpo = {n: {s: 0.1 + 0.1 * math.log2(n / 250) + d for s, d in ((1, -0.01), (2, 0.01))} for n in ns}
    rloo = {n: {s: v + 0.2 for s, v in dpo[n].items()} for n in ns}
    assert report_de.multiplier({'dpo': dpo, 'rloo': rloo}, 'rloo', 'dpo', 500) == (pytest.approx(4.0), '')
    assert report_de.multiplier({'dpo': dpo, 'rloo': rloo}, 'rloo', 'dpo', 4000) == (8000 / 4000, '>')
    rows = {m: {n: {s: {'gold_reward': v} for s, v in c[n].items()} for n in ns} for m, c in (('dpo', dpo), ('rloo', rloo))}
    t = report_de.de_table({'x': rows}, 'x', (('rloo', 'dpo'),), n_boot=200)
    assert t['rloo/dpo@500']['multiplier'] == pytest.approx(4.0) and t['rloo/dpo@500']['seeds'] == [1, 2]
    lo, hi = t['rloo/dpo@500']['ci']
    assert lo == pytest.approx(4.0) and hi == pytest.approx(4.0)  # every seed sits 0.2 above its own DPO curve
    assert t['rloo/dpo@8000']['sign'] == '>'
    # a sweep in progress: DPO measured up to N = 1000 only; beyond it the table says so, not "> 8000/N"
    part = {'sentiment': {'dpo': {n: v for n, v in rows['dpo'].items() if n <= 1000}, 'rloo': rows['rloo']}}
    t = report_de.de_table(part, 'sentiment', (('rloo', 'dpo'),), n_boot=200)
    assert report_de.mult_cell(t['rloo/dpo@250'], 250) == '4 [4, 4]'
    assert report_de.mult_cell(t['rloo/dpo@500'], 500) == '> 1000/500 [> max, > max]'


def test_best_of_n_is_chosen_on_val_per_reranker():
    def row(split, name, kl, gold, rm=None, best_of=None):
        return {'task': 't', 'seed': 1, 'split': split, 'name': name, 'kl': kl, 'gold_reward': gold, 'rm': rm,
                'best_of': best_of, 'method': 'best_of_n', 'run': 'bon'}
    bon = {'val': [], 'test': []}
    for split, flip in (('val', 1), ('test', -1)):  # test golds run the other way: a test-chosen pick would differ
        for rm in ('out/x/rm_n250', 'out/x/dpo_n250'):
            label = os.path.basename(rm)
            bon[split] += [row(split, f'sft+bo1@{label}', 0.0, 0.0, rm, 1),
                           row(split, f'sft+bo4@{label}', 1.0, flip * (0.3 if 'rm' in label else 0.1), rm, 4)]
    pick = report_de.bon_pick(bon, 'rm_n250', 10)
    assert pick['name'] == 'sft+bo4@rm_n250' and pick['split'] == 'test'
    assert report_de.bon_pick(bon, 'dpo_n250', 10)['gold_reward'] == -0.1  # its own reranker's pick, test numbers
    assert report_de.bon_pick(bon, 'dpo_n250', 0.5)['best_of'] == 1  # n = 4 past the budget: SFT
    assert report_de.bon_pick(bon, 'rm_n500', 10) is None  # a reranker the sweep did not use


def test_the_rm_is_read_at_the_step_it_kept_and_dpo_at_its_end(tmp_path, monkeypatch):
    logs = tmp_path / 'h5_best_of_n' / 'logs'
    logs.mkdir(parents=True)
    ev = [{'step': 50, 'val_pref_loglik': -0.69, 'val_pref_acc': 0.52}, {'step': 100, 'loss': 0.3},
          {'step': 150, 'val_pref_loglik': -0.80, 'val_pref_acc': 0.60}]
    for name in ('seed1_sentiment_rm_n500', 'seed1_sentiment_dpo_n500', 'seed1_sentiment_rloo_n500'):
        (logs / f'{name}.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in ev))
    monkeypatch.setattr(report_common, 'RES', str(tmp_path))
    assert report_hypotheses.h5_verifier_acc() == {('sentiment', 'rm', 500): {1: (0.52, 50)},
                                                   ('sentiment', 'dpo', 500): {1: (0.60, 150)}}


def test_h5_best_of_n_reads_each_rerankers_picks_on_the_same_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(report_common, 'RES', str(tmp_path))
    rows = [{'task': 'sentiment', 'seed': s, 'split': 'test', 'method': 'best_of_n', 'rm': f'out/x/{rk}', 'best_of': n,
             'gold_reward': g + 0.01 * s} for s in (1, 2) for rk, n, g in
            (('rm_n4000', 1, 0.0), ('rm_n4000', 64, 0.4), ('dpo_n4000', 1, 0.0), ('dpo_n4000', 64, 0.2),
             ('rm_n8000', 64, 0.9))]  # a reranker the table does not show
    md = report_hypotheses.h5_best_of_n(rows + [dict(rows[1], split='val', gold_reward=5.0)], shown=(1, 64))
    assert '| sentiment | RM, 4000 pairs | +0.015 ± 0.007 | +0.415 ± 0.007 |' in md
    assert "| sentiment | DPO's implicit reward, 4000 pairs | +0.015 ± 0.007 | +0.215 ± 0.007 |" in md
    assert '| sentiment | RM, 500 pairs | - | - |' in md and '0.9' not in md
    assert (tmp_path / 'h5_best_of_n_sentiment.png').exists()


# ---- the second pass (experiments/data_efficiency_v2.py): its protocol, pinned on its job list

import data_efficiency_v2 as DE2  # noqa: E402
import frontier as F  # noqa: E402


def flag(cmd, name):
    return cmd.split(f'--{name} ')[1].split()[0]


def test_v2_snapshots_at_the_same_steps_at_every_n():
    """Kills snapshots spaced as a fraction of the run (the first pass: at large N the first was past the budget)
    and the first chunk's spacing (every 20 DPO steps: small-N DPO passed 10 nats by step 20-60)."""
    runs = [(n, c) for n, _, c, rec in DE2.jobs() if rec is None and ('--loss dpo' in c or '--algo rloo' in c)]
    assert {n.split('/')[3] for n, _ in runs} == {'sentiment', 'short', 'overlap'}
    for name, cmd in runs:
        every, steps = int(flag(cmd, 'eval_interval')), int(flag(cmd, 'max_iters'))
        early, until = map(int, cmd.split('--early_snapshots ')[1].split()[:2])  # EVERY UNTIL, as the stages read it
        snaps = [s for s in range(1, steps + 1) if s % every == 0 or s == steps or (s <= until and s % early == 0)]
        assert '--snapshots' in cmd and snaps[:15] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 80, 100, 120], name
    n16k = [c for n, c in runs if n.endswith('dpo_b0.1_n16000')][0]
    assert flag(n16k, 'max_iters') == '500'  # 1 epoch of 16000 pairs


def test_v2_val_scores_the_same_prompts_for_every_candidate():
    """The val choice compares candidates on one set of prompts: every val job of a (task, seed) has the same
    prompts, samples and seed, SFT's (best-of-n) included; test jobs score every test prompt twice."""
    by_block = {}
    for name, _, cmd, rec in DE2.jobs():
        if rec is not None:
            split = rec[3]  # the split the records say
            key = ' '.join(f'{k}={flag(cmd, k) if f"--{k} " in cmd else None}' for k in ('n_prompts', 'samples', 'seed'))
            by_block.setdefault((*name.split('/')[2:4], split), set()).add(key)
    assert all(len(v) == 1 for v in by_block.values())
    assert by_block[('seed1', 'short', 'val')] == {'n_prompts=300 samples=1 seed=1'}
    assert by_block[('seed1', 'short', 'test')] == {'n_prompts=None samples=2 seed=1'}


def test_v2_rm_is_trained_as_the_frontiers_at_every_n():
    """Kills --keep_best (it kept the first eval of nearly every small-N RM) and a step count that drops the floor."""
    rms = {n: c for n, _, c, rec in DE2.jobs() if rec is None and c.startswith('python train_rm.py')}
    assert len(rms) == 3 * sum(len(v) for v in DE2.NS.values())
    for name, cmd in rms.items():
        n = int(flag(cmd, 'n_pairs'))
        assert '--keep_best' not in cmd and int(flag(cmd, 'max_iters')) == max(250, math.ceil(2 * n / 32)), name
    assert DE2.rm_steps(4000) == 250  # the frontier's RM: 2 epochs of 4000 pairs at 32 a step
    assert DE2.rm_steps(250) == 250 and DE2.rm_steps(16000) == 1000


def test_v2_chooses_over_both_betas_within_each_budget(tmp_path):
    """The test checkpoint of (method, N, budget) is the val best within the budget over both betas' snapshots and
    SFT; a chosen checkpoint that is gone is refused, not replaced."""
    def write(run, rows):
        with open(tmp_path / f'sentiment_seed1_{run}_val.jsonl', 'w') as f:
            f.writelines(json.dumps(r) + '\n' for r in rows)
    keep = tmp_path / 'b003_s8'
    keep.mkdir()
    write('bon', [{'method': 'best_of_n', 'best_of': 1, 'kl': 0.0, 'gold_reward': 0.1, 'path': 'sft'},
                  {'method': 'best_of_n', 'best_of': 2, 'kl': 0.3, 'gold_reward': 0.2, 'path': 'sft'}])
    write('dpo_b0.1_n250', [{'method': 'dpo', 'kl': 5.0, 'gold_reward': 0.3, 'path': 'b01_s20'},
                            {'method': 'dpo', 'kl': 15.0, 'gold_reward': 0.6, 'path': 'b01_s40'}])
    write('dpo_b0.03_n250', [{'method': 'dpo', 'kl': 8.0, 'gold_reward': 0.4, 'path': str(keep)},
                             {'method': 'dpo', 'kl': 25.0, 'gold_reward': 0.9, 'path': 'b003_s40'}])
    pick = lambda budget: DE2.chosen('sentiment', 1, 'dpo', 250, budget, res=str(tmp_path))['path']  # noqa: E731
    assert (pick(10), pick(20), pick(30), pick(3)) == (str(keep), 'b01_s40', 'b003_s40', 'sft')
    cmd = 'python eval.py score --split test CHOSEN:sentiment:1:dpo:250:10 --json x'
    assert DE2.resolve(cmd, res=str(tmp_path)) == f'python eval.py score --split test {keep} --json x'
    with pytest.raises(ValueError, match='b01_s40 is gone'):
        DE2.resolve(cmd.replace(':10 ', ':20 '), res=str(tmp_path))


def test_the_multiplier_reads_a_curve_up_to_16000_pairs():
    """The second pass's N reach 16000: a DPO curve that reaches RLOO's value only between 8000 and 16000 gives a
    finite multiplier above 8000/N, not a '> max' (kills N read from the first pass's list, which ends at 8000)."""
    ns = DE2.NS['sentiment']
    dpo = {n: {1: 0.1 * math.log2(n / 250)} for n in ns}  # 0 at 250, 0.6 at 16000
    rloo = {n: {1: 0.55} for n in ns}
    m, sign = report_de.multiplier({'dpo': dpo, 'rloo': rloo}, 'rloo', 'dpo', 1000)
    assert sign == '' and m == pytest.approx(2 ** 5.5 * 250 / 1000)  # DPO reaches 0.55 at 250 * 2^5.5 pairs
    assert 8000 / 1000 < m < 16000 / 1000


def test_v2_counts_runs_short_of_snapshots_and_sft_picks():
    """The report's protocol checks: a run with fewer than 3 val snapshots inside a budget, and a test pick that is
    SFT itself, are each counted per budget."""
    row = lambda **kw: {'task': 'sentiment', 'seed': 1, 'best_of': None, **kw}  # noqa: E731
    rows = [row(run='bon', split='val', method='best_of_n', best_of=1, kl=0.0, path='sft'),
            *[row(run='dpo_b0.1_n250', split='val', method='dpo', kl=k, step=i, path=f's{k}') for i, k in enumerate((5.0, 8.0, 12.0))],
            *[row(run='rloo_b0.1_n250', split='val', method='rloo', kl=k, step=i, path=f'r{k}') for i, k in enumerate((1.0, 2.0, 3.0))],
            row(run='dpo_n250_kl10', split='test', method='dpo', setting='n250_kl10', path='sft'),
            row(run='dpo_n250_kl20', split='test', method='dpo', setting='n250_kl20', path='s12.0')]
    assert report_de2.de2_checks(rows) == {10: (2, 1, 1, 1), 20: (2, 0, 0, 1)}


def test_v2_sets_a_block_aside_and_keeps_its_cpu_time(tmp_path):
    """Kills a set-aside that moves another block's or seed's files, or drops the CPU time the block spent."""
    res = tmp_path / 'res'
    (res / 'logs').mkdir(parents=True)
    files = ['overlap_seed1337_dpo_b0.1_n250_val.jsonl', 'labels_overlap_seed1337.json',
             'logs/seed1337_overlap_rm_n250.jsonl', 'overlap_seed1_bon_val.jsonl', 'labels_overlap_seed1.json',
             'sentiment_seed1337_bon_val.jsonl', 'logs/seed1337_sft.jsonl', 'logs/seed1_overlap_rm_n250.jsonl']
    for f in files:
        (res / f).write_text(f)
    (res / 'timings.tsv').write_text('out/frontier/seed1337/sft\t300.0\nout/data_efficiency_v2/seed1337/overlap/rm_n250\t100.0\n'
                                     'out/data_efficiency_v2/seed1/overlap/rm_n250\t90.0\n')
    F.set_aside(str(res), *DE2.block('overlap', '1337'))
    assert sorted(os.path.relpath(os.path.join(d, f), res / 'stale') for d, _, fs in os.walk(res / 'stale') for f in fs) \
        == sorted(files[:3] + ['timings.tsv'])
    assert all((res / f).exists() for f in files[3:]) and not any((res / f).exists() for f in files[:3])
    assert (res / 'stale/timings.tsv').read_text() == 'out/data_efficiency_v2/seed1337/overlap/rm_n250\t100.0\n'
    assert 'overlap' not in (res / 'timings.tsv').read_text().replace('seed1/overlap', '')  # moved, not copied
    F.set_aside(str(res), *DE2.block('sft', '1337'))
    assert (res / 'stale/logs/seed1337_sft.jsonl').exists() and (res / 'logs/seed1_overlap_rm_n250.jsonl').exists()
    assert (res / 'stale/timings.tsv').read_text().endswith('out/frontier/seed1337/sft\t300.0\n')
    with pytest.raises(SystemExit):
        DE2.block('nosuch', '1337')


def test_v2_trains_a_run_short_of_snapshots_again_densely(tmp_path):
    """A run with fewer than 3 val snapshots inside a budget is trained again, the same command with a snapshot at
    every step up to its first snapshot past the budget; those snapshots are candidates and count as the run's, and
    the rerun is checked to be the same run (kills a rule that never fires, one that fires on a run with 3 inside,
    and a rerun left out of the choice or the checks)."""
    def write(run, kls, start=5, every=5, method='rloo', best_of=None):
        with open(tmp_path / f'overlap_seed1_{run}_val.jsonl', 'w') as f:
            f.writelines(json.dumps({'task': 'overlap', 'seed': 1, 'run': run, 'split': 'val', 'method': method,
                                     'best_of': best_of, 'step': start + i * every, 'kl': k, 'gold_reward': k / 100,
                                     'path': f'{run}/step_{start + i * every}.pt'}) + '\n' for i, k in enumerate(kls))
    write('bon', [0.0], method='best_of_n', best_of=1)
    write('rloo_b0.1_n250', [0.3, 2.1, 13.2, 24.6])  # 2 inside 10 nats, 3 inside 20
    write('rloo_b0.03_n250', [1.0, 4.0, 9.0, 30.0])
    write('rloo_b0.1_n1000', [8.0, 21.0, 30.0])  # short in both budgets: to its first snapshot past 20
    until = lambda run: DE2.dense_until('overlap', 1, run, res=str(tmp_path))  # noqa: E731
    assert (until('rloo_b0.1_n250'), until('rloo_b0.03_n250'), until('rloo_b0.1_n1000')) == (15, None, 10)
    assert DE2.may_need_dense('overlap', 1, 'rloo_b0.1_n250', res=str(tmp_path))
    assert not DE2.may_need_dense('overlap', 1, 'rloo_b0.03_n250', res=str(tmp_path))
    assert DE2.may_need_dense('overlap', 1, 'rloo_b0.1_n8000', res=str(tmp_path))  # not scored yet: decided later
    cmd = f'python train_rl.py --beta 0.1 {DE2.SNAPSHOTS} --seed 1'
    assert DE2.resolve(f'DENSE:overlap:1:rloo_b0.1_n250:{cmd}', res=str(tmp_path)) == \
        'python train_rl.py --beta 0.1 --eval_interval 1000 --snapshots --early_snapshots 1 15 --seed 1'
    assert DE2.resolve(f'DENSE:overlap:1:rloo_b0.03_n250:{cmd}', res=str(tmp_path)) == 'true'
    (tmp_path / 'x_dense').mkdir()  # a dense rerun not needed kept no snapshots: its scoring writes no records
    assert DE2.F.run_job(str(tmp_path / "score"), f'python eval.py score SNAPSHOTS:{tmp_path}/x_dense', ('overlap', 1, 'x_dense', 'val'),
                     print, str(tmp_path))
    assert not (tmp_path / 'overlap_seed1_x_dense_val.jsonl').exists()
    write('rloo_b0.1_n250_dense', [0.3, 0.7, 1.2, 1.6, 1.9, 2.1, 4.0, 6.5, 9.9, 11.0, 13.2], start=5, every=1)
    assert DE2.chosen('overlap', 1, 'rloo', 250, 10, res=str(tmp_path))['path'] == 'rloo_b0.1_n250_dense/step_13.pt'
    rows = [json.loads(line) for f in sorted(tmp_path.glob('*_val.jsonl')) for line in open(f)]
    # a rerun counts as its run; rloo_b0.1_n1000 (none yet) is short
    assert report_de2.de2_checks(rows)[10][:2] == (3, 1)
    assert report_de2.de2_dense(rows) == (1, 1)  # steps 5 and 10 of the rerun are the run's
    next(r for r in rows if r['run'] == 'rloo_b0.1_n250_dense' and r['step'] == 10)['kl'] = 2.2
    assert report_de2.de2_dense(rows) == (1, 0)


def test_v2_reading_applies_the_papers_pattern_rule(monkeypatch):
    """The reading's rule: sentiment's RLOO multiplier interval above 1 at most of its N, short's and overlap's
    holding 1 at most of theirs; no reading before every task has all seeds (kills a rule read off the point
    values, or a reading from two seeds)."""
    cis = {'sentiment': [(1.5, 3), (0.2, 2.5), (2, math.inf), (1.1, 4), (0.1, 0.5)],  # above 1 at 3 of 5
           'short': [(0.5, 2), (0.9, 1.2), (2, 3)], 'overlap': [(0, 1.5), (0.8, 1.1), (0.2, 0.5)]}
    seeds = [1337, 1, 2]
    monkeypatch.setattr(report_de2, 'de2_points', lambda rows, budget: None)
    monkeypatch.setattr(report_de2, 'de_table', lambda points, task, pairs: {
        f'rloo/dpo@{n}': {'ci': ci, 'seeds': seeds, 'multiplier': 1.0, 'sign': ''}
        for n, ci in zip(DE2.NS[task], cis[task])})
    text = report_de2.de2_reading_md([])
    assert text.count("The paper's pattern appears at this budget.") == len(DE2.BUDGETS)
    assert f"sentiment: above 1 at N = {DE2.NS['sentiment'][0]}, {DE2.NS['sentiment'][2]}, {DE2.NS['sentiment'][3]}" in text
    cis['sentiment'][0] = (0.9, 3)  # now above 1 at 2 of 5 only
    assert "The paper's pattern does not appear at this budget." in report_de2.de2_reading_md([])
    seeds.pop()
    assert report_de2.de2_reading_md([]).startswith('The reading waits')


def test_v2_changes_table_measures_what_each_change_did(tmp_path, monkeypatch):
    """The changes table's measured column: picks from the second beta, dense reruns and their reproduction, runs
    short of snapshots, counted from the records (kills a column that does not read them)."""
    monkeypatch.setattr(report_common, 'RES', str(tmp_path))
    row = lambda **kw: {'task': 'sentiment', 'seed': 1, 'best_of': None, 'path': None, **kw}  # noqa: E731
    rows = [row(run='bon', split='val', method='best_of_n', best_of=1, kl=0.0, path='sft'),
            *[row(run='dpo_b0.03_n250', split='val', method='dpo', kl=k, step=i, gold_reward=0.1 * i)
              for i, k in enumerate((1.0, 2.0, 3.0))],
            *[row(run='dpo_b0.03_n250_dense', split='val', method='dpo', kl=k, step=i, gold_reward=0.1 * i)
              for i, k in enumerate((1.0, 2.0))],
            row(run='dpo_n250_kl10', split='test', method='dpo', setting='n250_kl10', path='x/dpo_b0.03_n250/step_2.pt',
                gold_reward=0.2),
            row(run='rloo_n250_kl10', split='test', method='rloo', setting='n250_kl10', path='x/rloo_b0.1_n250/step_5.pt',
                gold_reward=0.3)]
    md = report_de2.de2_changes_md(rows)
    assert 'from a beta-0.03 run: 1 of 2 |' in md and '| 1 runs trained again; 1 match their first run' in md
    assert 'runs with < 3 val snapshots inside 10 nats: 0 of 1, test picks that are SFT: 0 of 2' in md
    rows[4] = {**rows[4], 'gold_reward': 0.5}  # the rerun no longer reproduces its run
    assert '| 1 runs trained again; 0 match' in report_de2.de2_changes_md(rows)
