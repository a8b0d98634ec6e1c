"""The local reward class with its reference (DPO's implicit reward beta * log pi/pi_ref) as a reward to tune
against and to rerank by: the isomorphism experiment of the hypotheses (H1)."""
import json
import math
import os

import pytest
import torch

from conftest import M, planted_prefs, run as run_strs, save_tiny, tiny_gpt

TASK = {'name': 'short', 'prompt_len': 8, 'completion_len': 2}


def run(*args, check=True):
    return run_strs(*map(str, args), check=check)


def test_implicit_reward_is_dpos_reward_by_hand():
    policy, ref = tiny_gpt(seed=1), tiny_gpt(seed=2)
    uniform = tiny_gpt(seed=3)
    for p in uniform.parameters():  # all-zero weights: logits 0, every token has log-prob -log V
        torch.nn.init.zeros_(p)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 511, (3, 8), generator=g), torch.randint(0, 511, (3, 5), generator=g)
    m = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.float)
    with torch.no_grad():
        logp = M.completion_logprobs(policy, x, y, m).sum(1)
        r = M.implicit_reward(policy, uniform, 0.5, x, y, m)
        # against the uniform reference: 0.5 * (log pi(y|x) + (real tokens) * log 512)
        assert torch.allclose(r, 0.5 * (logp + torch.tensor([5.0, 2.0, 1.0]) * math.log(512)), atol=1e-5)
        # the same as DPO's implicit reward of a chosen completion, and zero for the reference itself
        ref_logp = M.completion_logprobs(ref, x, y, m).sum(1)
        _, r_c, _ = M.dpo_loss(logp, logp, ref_logp, ref_logp, 0.1)
        assert torch.allclose(M.implicit_reward(policy, ref, 0.1, x, y, m), r_c, atol=1e-6)
        assert torch.equal(M.implicit_reward(ref, ref, 0.1, x, y, m), torch.zeros(3))


def test_a_dpo_policy_is_a_reward_for_rl_and_for_best_of_n(tmp_path):
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    prefs = planted_prefs(str(tmp_path / 'prefs.pt'), task=TASK, C=2)
    dpo = str(tmp_path / 'dpo')
    run('train_mle.py', '--loss', 'dpo', '--prefs', prefs, '--ref', sft, '--out_dir', dpo, '--lr', 1e-2,
        '--batch_size', 16, '--epochs', 2, '--no_tqdm')
    ck, _ = M.load_reward(dpo, 'cpu', 512)
    assert ck['stage'] == 'dpo' and ck['ref'] == sft
    # RLOO against it runs, from KL 0 at step 0
    out = str(tmp_path / 'rloo')
    run('train_rl.py', '--algo', 'rloo', '--reward', dpo, '--init', sft, '--out_dir', out, '--max_iters', 4,
        '--eval_interval', 1, '--batch_size', 4, '--no_tqdm')
    rows = [json.loads(line) for line in open(os.path.join(out, 'log.jsonl'))]
    assert rows[0]['objective/kl'] == 0.0 and all(math.isfinite(r['objective/scores']) for r in rows)
    # best-of-n reranks by it: the picks' implicit reward never falls as n grows
    js = str(tmp_path / 'eval.json')
    run('eval.py', 'score', sft, '--task', 'short', '--n_prompts', 16, '--split', 'val', '--json', js,
        '--best_of', 8, '--rm', dpo, '--device', 'cpu')
    pol = json.load(open(js))['policies']
    s = [pol[f'sft+bo{k}']['rm_score'] for k in (1, 2, 4, 8)]
    assert s == sorted(s) and s[-1] > s[0]
    # a policy that was not trained with a preference loss is no reward
    r = run('train_rl.py', '--algo', 'rloo', '--reward', sft, '--init', sft, '--out_dir', str(tmp_path / 'x'),
            check=False)
    assert r.returncode != 0 and "expected rm or dpo" in r.stderr and 'Traceback' not in r.stderr


def test_off_policy_pairs_hold_the_human_continuation_and_the_same_samples(tmp_path):
    sft = save_tiny(str(tmp_path / 'sft'), tiny_gpt())
    files = {}
    for pair in ('samples', 'human'):
        files[pair] = str(tmp_path / f'{pair}.pt')
        run('eval.py', 'label', '--policy', sft, '--task', 'sentiment', '--device', 'cpu', '--batch_size', 32,
            '--n_pairs', 24, '--n_val', 8, '--tau', 0, '--pair', pair, '--out', files[pair])
    on, off = (M.load_prefs(files[p]) for p in ('samples', 'human'))
    task = on['task']
    _, refs, ref_mask = M.get_prompts(512, 'train', task['prompt_len'], task['completion_len'])
    d = off['train']
    human, human_mask = refs[d['prompt_idx']], ref_mask[d['prompt_idx']]
    is_c, is_r = ((d[k] == human).all(1) & (d[k + '_mask'] == human_mask).all(1) for k in ('chosen', 'rejected'))
    assert (is_c | is_r).all()  # one side of every pair is the human continuation
    # the other side is the first sample of the on-policy pair drawn with the same seed
    sample = torch.where(is_c[:, None], d['rejected'], d['chosen'])
    assert all(any(torch.equal(s, c) for c in (on['train']['chosen'][i], on['train']['rejected'][i]))
               for i, s in enumerate(sample))
    assert torch.load(files['human'], weights_only=True)['pair'] == 'human'


def test_the_verdict_rule_calls_a_gap_only_when_every_seed_agrees_and_the_mean_beats_the_spread():
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import report_common
    assert report_common.pattern([0.1, 0.2, 0.3]) == 'gap'
    assert report_common.pattern([-0.3, -0.2, -0.25]) == 'reverse gap'
    assert report_common.pattern([0.1, -0.1, 0.3]) == 'level'  # the seeds disagree in sign
    assert report_common.pattern([0.01, 0.5, 0.02]) == 'level'  # one sign, but the mean (0.18) is inside the sd (0.28)


def test_the_wide_policys_runs_read_as_their_own_sweep_and_the_growth_is_a_difference_of_differences(tmp_path):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import frontier
    import report_common
    import report_hypotheses
    import report_verdicts
    js = tmp_path / 'eval.json'
    pol = {'sft+bo1': {'stage': 'sft', 'best_of': 1, 'gold_reward': 0.1, 'kl': 0.0},
           'step_25': {'stage': 'rl', 'gold_reward': 0.4, 'kl': 3.0}, 'human': {'stage': 'human', 'gold_reward': 0.2}}
    js.write_text(json.dumps({'policies': {k: v for k, v in pol.items() if k != 'step_25'}}))
    bon = frontier.records(str(js), 'sentiment', 1, 'wide_bon', 'val')
    js.write_text(json.dumps({'policies': {k: v for k, v in pol.items() if k != 'sft+bo1'}}))
    rl = frontier.records(str(js), 'sentiment', 1, 'wide_rloo_small_b0.1', 'val')
    assert [r['method'] for r in bon] == ['best_of_n', 'human'] and rl[0]['method'] == 'wide_rloo_small'
    sized = {**rl[0], 'run': 'rloo_b0.1', 'method': 'rloo'}  # an SFT-sized run: dropped
    wide = report_hypotheses.wide_rows(bon + rl + [sized])
    assert [(r['run'], r['method']) for r in wide] == [('bon', 'best_of_n'), ('bon', 'human'),
                                                        ('rloo_small_b0.1', 'rloo_small'), ('rloo_small_b0.1', 'human')]
    assert report_common.sft_row(wide)['gold_reward'] == 0.1  # the wide SFT is the wide runs' KL-0 candidate
    # a second learning rate is the same method's candidate: the val choice within the budget picks the rate
    fast = [{**r, 'run': 'wide_rloo_small_lr0.0003_b0.1', 'method': 'wide_rloo_small_lr0.0003', 'name': 'fast',
             'gold_reward': g, 'kl': k} for r, g, k in ((rl[0], 0.5, 4.0), ({**rl[0], 'split': 'test'}, 0.45, 4.1))]
    both = report_hypotheses.wide_rows(bon + rl + [{**rl[0], 'split': 'test'}] + fast)
    assert {r['method'] for r in both if 'lr' in r['run']} == {'rloo_small'}
    assert report_common.choose(both, 'sentiment', 1, 'rloo_small', 10)['run'] == 'rloo_small_lr0.0003_b0.1'
    assert report_common.choose(both, 'sentiment', 1, 'rloo_small', 3.5)['run'] == 'rloo_small_b0.1'
    # the verdict on growth: per seed, (RLOO - DPO) on the wide policy minus (RLOO - DPO) on the SFT-sized one
    summ = lambda rloo, dpo, other=(): {'sentiment': {m: {10: {s: {'gold_reward': g} for s, g in zip((1337, 1, 2), v)}}
                                                      for m, v in (('rloo_small', rloo), ('dpo', dpo),
                                                                   ('dpo_dense', other), ('dpo_own', other))}}
    table = report_verdicts.verdict_md({'size': summ((0.3, 0.4, 0.5), (0.2, 0.2, 0.2), (0.3, 0.3, 0.3)),
                                        'size_wide': summ((0.6, 0.7, 0.5), (0.3, 0.2, 0.1), (0.6, 0.7, 0.5))})
    row = next(line for line in table.splitlines() if 'twice as wide' in line)
    assert '+0.200 ± 0.100 (3/3 > 0) | gap | agrees' in row  # growths 0.2, 0.3, 0.1
    row = next(line for line in table.splitlines() if 'DPO seen as often' in line)  # the SFT-sized DPO's dense run
    assert '+0.300 ± 0.100 (3/3 > 0) | gap | agrees' in row  # wide 0.3, 0.5, 0.4 minus SFT-sized 0, 0.1, 0.2
    row = next(line for line in table.splitlines() if 'on-policy pairs' in line)  # the wide DPO on its own samples
    assert '-0.200 ± 0.100 (0/3 > 0) | reverse gap | disagrees' in row  # wide 0, 0, 0 minus SFT-sized 0.1, 0.2, 0.3
    row = next(line for line in table.splitlines() if 'scratch RM of 1/8' in line)
    assert '+0.200 ± 0.100 (3/3 > 0) | gap | agrees' in row  # the SFT-sized differences 0.1, 0.2, 0.3


def test_size_sets_a_seed_aside_but_not_the_frontiers_jobs_or_the_rates_not_chosen(tmp_path):
    """--set_aside for experiments/size.py: kills one that moves another seed's files, the frontier's timings (they
    count under the frontier) or the logs of the wide SFT's rates not chosen (never redone), or that leaves a
    redone job's files or times (old job names included: the sweep moved from out/frontier/ to out/size/)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import frontier
    import size
    res = tmp_path / 'res'
    (res / 'logs').mkdir(parents=True)
    moved = ['sentiment_seed1337_wide_dpo_b0.1_val.jsonl', 'labels_wide_sentiment_seed1337.json',
             'logs/seed1337_sentiment_rm_small.jsonl', f'logs/seed1337_sft_wide_lr{size.WIDE_LR}.jsonl']
    kept = ['sentiment_seed1_wide_dpo_b0.1_val.jsonl', 'logs/seed1337_sft_wide_lr0.002.jsonl', 'logs/seed1_sentiment_rm_small.jsonl']
    for f in moved + kept:
        (res / f).write_text(f)
    old, new = 'out/frontier/seed1337/', 'out/size/seed1337/'
    (res / 'timings.tsv').write_text(f'{old}sft\t300.0\n{old}sentiment/label\t90.0\n{old}sentiment/rm_small\t30.0\n'
                                     f'{old}sft_wide_lr0.002\t1400.0\n{new}sentiment/rm\t120.0\n'
                                     'out/frontier/seed1/sentiment/rm_small\t31.0\n')
    assert frontier.set_aside(str(res), *size.block('sentiment', '1337')) == 4
    assert all((res / 'stale' / f).exists() for f in moved) and all((res / f).exists() for f in kept)
    assert (res / 'stale/timings.tsv').read_text() == (f'{old}sentiment/rm_small\t30.0\n{old}sft_wide_lr0.002\t1400.0\n'
                                                       f'{new}sentiment/rm\t120.0\n')
    assert (res / 'timings.tsv').read_text() == (f'{old}sft\t300.0\n{old}sentiment/label\t90.0\n'
                                                 'out/frontier/seed1/sentiment/rm_small\t31.0\n')
    with pytest.raises(SystemExit):
        size.block('short', '1')


def test_size_reads_only_its_own_machine(tmp_path, monkeypatch):
    """Verifier accuracies come from one sweep's logs (kills a glob over every sweep, where a verifier retrained on
    another machine overwrote the frontier's), and the size reading measures the drift it avoids: the frontier's
    DPO at its last snapshot against the same command's DPO from H1 to its end."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import report_common
    import report_frontier
    import report_hypotheses
    monkeypatch.setattr(report_common, 'RES', str(tmp_path))
    for sweep, acc in (('frontier', 0.6), ('hypotheses', 0.5)):
        (tmp_path / sweep / 'logs').mkdir(parents=True)
        (tmp_path / sweep / 'logs' / 'seed1_sentiment_dpo_b0.1.jsonl').write_text(json.dumps({'val_pref_acc': acc}) + '\n')
    assert report_frontier.verifier_acc() == {('sentiment', 'dpo_b0.1'): {1: 0.6}}
    assert report_frontier.verifier_acc('hypotheses') == {('sentiment', 'dpo_b0.1'): {1: 0.5}}
    row = {'task': 'sentiment', 'seed': 1, 'split': 'test'}
    (tmp_path / 'frontier' / 'sentiment_seed1_dpo_b0.1_test.jsonl').write_text(''.join(json.dumps({**row, **r}) + '\n' for r in (
        {'run': 'dpo_b0.1', 'name': 'human_reference', 'step': None, 'gold_reward': 0.03, 'kl': None},
        {'run': 'dpo_b0.1', 'name': 'dpo_b0.1/step_375', 'step': 375, 'gold_reward': 0.45, 'kl': 13.0},
        {'run': 'dpo_b0.1', 'name': 'dpo_b0.1/step_63', 'step': 63, 'gold_reward': 0.2, 'kl': 9.0})))
    (tmp_path / 'hypotheses' / 'sentiment_seed1_rloo_local_long_b0.1_test.jsonl').write_text(''.join(
        json.dumps({**row, **r}) + '\n' for r in ({'run': 'rloo_local_long_b0.1', 'name': 'dpo_b0.1', 'step': 375,
                                                 'gold_reward': 0.33, 'kl': 14.0},
                                                {'run': 'rloo_local_long_b0.1', 'name': 'rloo_local_long_b0.1/step_50',
                                                 'step': 50, 'gold_reward': 0.1, 'kl': 5.0})))
    assert report_hypotheses.machine_drift() == {1: ((0.45, 13.0), (0.33, 14.0))}
    md = report_hypotheses.size_md({}, [])
    assert 'ends at test gold +0.330 (KL 14.0)' in md and "frontier's +0.450 (KL 13.0)" in md and '-0.120' in md
    assert 'is running: seeds with every run scored on test so far: SFT-sized 0, wide 0 of 3.' in md


def test_size_reading_once_every_seed_is_in(tmp_path, monkeypatch):
    """The complete reading: the frontier's beta-0.1 gap beside the same commands rerun, each wide method's rate
    as chosen on val, and the growth rows (kills a reading that counts the wrong rate or pairs the wrong runs)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import report_common
    import report_hypotheses
    monkeypatch.setattr(report_common, 'RES', str(tmp_path))
    (tmp_path / 'size').mkdir()
    def scored(run, seeds):
        (tmp_path / 'size' / f'sentiment_{run}_test.jsonl').write_text(''.join(json.dumps(
            {'task': 'sentiment', 'seed': s, 'split': 'test', 'run': run}) + '\n' for s in seeds))
    for run in ('dpo_b0.1', 'wide_dpo_b0.1'):
        scored(run, report_common.SEEDS)
    scored('wide_rloo_b0.1', report_common.SEEDS[:1])  # a seed without all of its block's runs is not in yet
    summ = lambda picks: {'sentiment': {m: {b: {s: {'gold_reward': g, 'run': run}  # noqa: E731
                                                for s, (g, run) in zip(report_common.SEEDS, v)}
                                            for b in (10, 30)} for m, v in picks.items()}}
    one = lambda gs, run='x': [(g, run) for g in gs]  # noqa: E731
    summaries = {'h2': summ({'rloo': one((0.6, 0.6, 0.6)), 'dpo': one((0.2, 0.3, 0.4))}),
                 'size': summ({'rloo': one((0.4, 0.4, 0.4)), 'dpo': one((0.3, 0.3, 0.3))}),
                 'size_wide': summ({'dpo': [(0.1, 'dpo_lr0.0003_b0.1'), (0.1, 'dpo_b0.1'), (0.1, 'dpo_lr0.0003_b0.1')],
                                    'rloo_small': one((0.2, 0.2, 0.2), 'rloo_small_b0.1')})}
    vrows = [dict(source='growth', what='(RLOO on the scratch RM - DPO): wide - SFT-sized', d=[0.1, 0.2, 0.3], got='gap',
                  dm=[], got_m=None, parts=[[0.4, 0.5, 0.6], [0.3, 0.3, 0.3], [], []]),
             dict(source='size', what='not a growth row', d=[1.0, 1.0, 1.0], got='gap', dm=[], got_m=None)]
    assert 'SFT-sized 3, wide 1 of 3.' in report_hypotheses.size_md(summaries, vrows)
    scored('wide_rloo_b0.1', report_common.SEEDS)
    md = report_hypotheses.size_md(summaries, vrows)
    assert ("the same commands rerun here: within 10 nats +0.100 ± 0.000 (3/3 > 0) against the frontier's +0.300 ± "
            "0.100 (3/3 > 0); within 30 nats") in md
    assert "DPO: the frontier's 3e-4 on 2 of 3 seeds" in md and "scratch RM: the frontier's 3e-4 on 0 of 3 seeds" in md
    assert ('Growth ((RLOO on the scratch RM - DPO): wide - SFT-sized): +0.200 ± 0.100 (3/3 > 0), gap, the difference '
            'between +0.500 ± 0.100 on the wide policy and +0.300 ± 0.000 on the SFT-sized one.') in md
    assert 'not a growth row' not in md
    assert 'In words: RLOO on the small verifier leads DPO on the wide policy too, and its lead grows with the policy.' in md
    vrows[0].update(got='level', dm=[-0.1, -0.2, -0.1], got_m='reverse gap',
                    parts=[[0.4, -0.1, 0.6], [0.3, 0.3, 0.3], [0.1, 0.1, 0.2], [0.2, 0.3, 0.3]])
    assert ('does not lead DPO on the wide policy, and its lead does not grow with the policy; at matched KL it shrinks.'
            in report_hypotheses.size_md(summaries, vrows))


def test_matched_kl_reads_the_other_run_at_the_picks_kl():
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import report_verdicts

    def row(run, method, step, kl, gold, best_of=None):
        return {'task': 't', 'seed': 1, 'split': 'test', 'run': run, 'method': method, 'step': step, 'kl': kl,
                'gold_reward': gold, 'best_of': best_of}
    sft = row('bon', 'best_of_n', None, 0.0, 0.1, best_of=1)
    dpo = [row('dpo_b0.1', 'dpo', 20, 8.0, 0.5), row('dpo_b0.1', 'dpo', 40, 12.0, 0.9),
           row('dpo_b0.1', 'human', None, None, 0.3)]  # the human row of the run is not a point of its curve
    assert report_verdicts.gold_at_kl(dpo[:2], sft, 4.0) == pytest.approx(0.3)  # halfway from SFT to the first snapshot
    assert report_verdicts.gold_at_kl(dpo[:2], sft, 10.0) == pytest.approx(0.7)
    assert report_verdicts.gold_at_kl(dpo[:2], sft, 0.0) == 0.1
    assert report_verdicts.gold_at_kl(dpo[:2], sft, 13.0) is None
    summ = {'t': {'rloo': {10: {1: {'run': 'rloo_b0.1', 'gold_reward': 0.8, 'kl': 10.0}}},
                  'dpo': {10: {1: {'run': 'dpo_b0.1', 'gold_reward': 0.5, 'kl': 8.0}}}}}
    assert report_verdicts.matched(summ, [sft] + dpo, 't', 'rloo', 'dpo', 10) == {1: pytest.approx(0.1)}  # not 0.3
    # DPO chose SFT: its only run is read; with two runs and no pick among them there is nothing to read
    summ['t']['dpo'][10][1] = {'run': 'bon', 'gold_reward': 0.1, 'kl': 0.0}
    assert report_verdicts.matched(summ, [sft] + dpo, 't', 'rloo', 'dpo', 10) == {1: pytest.approx(0.1)}
    other = [dict(r, run='dpo_b0.03') for r in dpo]
    assert report_verdicts.matched(summ, [sft] + dpo + other, 't', 'rloo', 'dpo', 10) == {}


def test_h1_to_its_end_runs_long_and_is_scored_against_the_dpo_policy_itself():
    """KL(pi_RL || pi_DPO) needs the DPO policy as the scoring reference, and the gold gap needs it scored beside
    the snapshots on the same prompts (kills a scoring against SFT only, or a run as short as the first one)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import hypotheses
    jobs = {name: cmd for name, _, cmd, _ in hypotheses.jobs()}
    for seed in (1337, 1, 2):
        t = f'out/frontier/seed{seed}/sentiment'
        assert '--max_iters 1000 ' in jobs[f'{t}/rloo_local_long_b0.1'] and f'--reward {t}/dpo_b0.1 ' in jobs[f'{t}/rloo_local_long_b0.1']
        vs_dpo = jobs[f'{t}/score_rloo_local_long_vs_dpo_b0.1_test'].split()
        assert vs_dpo[vs_dpo.index('--ref') + 1] == f'{t}/dpo_b0.1' and vs_dpo.count(f'{t}/dpo_b0.1') == 2
        assert f'SNAPSHOTS:{t}/rloo_local_long_b0.1' in vs_dpo and vs_dpo[vs_dpo.index('--split') + 1] == 'test'
        vs_sft = jobs[f'{t}/score_rloo_local_long_b0.1_test'].split()
        assert vs_sft[vs_sft.index('--ref') + 1] == f'out/frontier/seed{seed}/sft'


def test_h1_to_its_end_reads_kl_to_dpo_from_one_record_and_the_gold_gap_on_the_same_prompts():
    """KL(pi_RL || pi_DPO) comes from the record scored against DPO, KL to SFT from the other, the gold gap from the
    DPO row beside the snapshots; the verdict row is the last snapshot's gap, one per seed (kills a swap of the two
    records, or a gap taken at the first snapshot)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import report_hypotheses
    rows = []
    for seed, gap in ((1337, 0.02), (1, -0.01), (2, 0.0)):
        for ref, kls in (('', (5.0, 12.0, 13.0)), ('_vs_dpo', (9.0, 2.0, 0.5))):
            run = f'rloo_local_long{ref}_b0.1'
            rows.append({'seed': seed, 'run': run, 'name': 'dpo_b0.1', 'step': 375, 'kl': 0.0 if ref else 13.4,
                         'gold_reward': 0.44})
            rows += [{'seed': seed, 'run': run, 'name': f'rloo_local_long_b0.1/step_{st}', 'step': st, 'kl': k,
                      'gold_reward': 0.44 + g} for st, k, g in zip((50, 200, 1000), kls, (-0.3, -0.1, gap))]
    d = report_hypotheses.h1_end(rows)
    assert d[1337]['dpo'] == (13.4, 0.44)
    assert [x[:3] for x in d[1337]['steps']] == [(50, 9.0, 5.0), (200, 2.0, 12.0), (1000, 0.5, 13.0)]
    assert [round(v['steps'][-1][3], 6) for v in d.values()] == [0.02, -0.01, 0.0]
    assert report_hypotheses.h1_end(rows[:4 * 3]) == {1337: d[1337]}  # a seed with one record of the two is left out


def test_sweeps_on_the_frontier_never_write_into_its_records():
    """A fresh clone rebuilds the frontier's labels for these sweeps; their statistics go to the sweep's folder, where
    the runner checks a rebuild against them (kills a rebuild that overwrites results/frontier/labels_*.json)."""
    import re
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
    import hypotheses
    import size
    for sweep in (hypotheses, size):
        written = [p for _, _, cmd, _ in sweep.jobs() for p in re.findall(r'--json (\S+)', cmd)]
        assert written and all(p.startswith(sweep.RES + '/') for p in written), sweep.RES
