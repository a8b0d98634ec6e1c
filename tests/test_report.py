"""experiments/report.py and its parts (report_*.py): the template's fields, the blocks between markers, and an
ablation drawn without a registry entry."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'experiments'))
pytest.importorskip('matplotlib')
import report_common  # noqa: E402
import report_costs  # noqa: E402
import report_frontier  # noqa: E402
import report_verdicts  # noqa: E402


def test_fill_and_markers():
    ctx = {'n': 607, 'g': lambda t, b: (0.5, 0.25) if t == 'x' else 0.125}
    assert report_common.fill('{{n}} prompts, {{g x 10|+.2f}}, {{g y 3|.3f}}, seed{1337,1}', ctx) == \
        '607 prompts, +0.50 ± 0.25, 0.125, seed{1337,1}'
    with pytest.raises(KeyError):  # a field with no record behind it is an error, not a silent blank
        report_common.fill('{{nothing}}', ctx)
    text = 'a\n<!-- t:begin (made by experiments/report.py) -->\nold\n<!-- t:end -->\nb'
    assert report_common.fill_markers(text, {'t': 'new'}) == \
        'a\n<!-- t:begin (made by experiments/report.py) -->\nnew\n<!-- t:end -->\nb'
    assert report_common.fill_markers('no markers', {'t': 'new'}) == 'no markers'
    item = '- a list item:\n\n  <!-- t:begin (made by experiments/report.py) -->\n  <!-- t:end -->\n  more'
    assert report_common.fill_markers(item, {'t': '| a |\n\n| b |'}) == (
        '- a list item:\n\n  <!-- t:begin (made by experiments/report.py) -->\n  | a |\n\n  | b |\n'
        '  <!-- t:end -->\n  more')  # stays in the item


def row(method, run, name, split, kl, gold, step=None, best_of=None, seed=1337, setting=None):
    return {'task': 'sentiment', 'seed': seed, 'method': method, 'setting': setting, 'run': run, 'name': name,
            'split': split, 'gold_reward': gold, 'gold_reward_ci': 0.01, 'kl': kl, 'win_vs_human': 0.5,
            'length': 24.0, 'eos_rate': 0.0, 'top_words': [], 'examples': [], 'step': step, 'best_of': best_of,
            'n_completions': 610 if split == 'test' else 607}


def test_ablation_drawn_and_tabled(tmp_path, monkeypatch):
    monkeypatch.setattr(report_common, 'RES', str(tmp_path))
    frontier = []
    for split in ('val', 'test'):
        frontier += [row('human', 'bon', 'human_reference', split, None, 0.02),
                     row('best_of_n', 'bon', 'sft+bo1', split, 0.0, 0.05, best_of=1),
                     row('best_of_n', 'bon', 'sft+bo4', split, 1.3, 0.2, best_of=4)]
        for method in ('dpo', 'rloo'):
            frontier += [row(method, f'{method}_b0.1', f'{method}_b0.1/step_{s}', split, kl, g, step=s)
                         for s, kl, g in ((50, 4.0, 0.2), (100, 8.0, 0.3 if method == 'dpo' else 0.5))]
    name = 'dpo_hot'
    assert name not in report_common.METHODS and name not in report_common.COLORS  # no registry entry
    os.makedirs(tmp_path / 'ablations' / name)
    for split in ('val', 'test'):
        with open(tmp_path / 'ablations' / name / f'sentiment_seed1337_{name}_b0.3_{split}.jsonl', 'w') as f:
            for s, kl, g in ((50, 2.5, 0.25), (100, 6.0, 0.4)):
                f.write(json.dumps(row(name, f'{name}_b0.3', f'{name}_b0.3/step_{s}', split, kl, g, step=s,
                                       setting='--beta 0.3')) + '\n')
    md = report_frontier.ablations_md(frontier)
    assert (tmp_path / 'ablations' / name / 'frontier_sentiment.png').stat().st_size > 0
    assert f'![{name} sentiment](results/ablations/{name}/frontier_sentiment.png)' in md
    line = next(x for x in md.splitlines() if x.startswith(f'| {name} (--beta 0.3) |'))
    assert '+0.250 (KL 2.5)' in line and '+0.400 (KL 6.0)' in line  # chosen on val, within each budget
    assert '| DPO (offline) |' in md and '| RLOO (RM + RL) |' in md  # beside the frontier's methods
    color = report_common.color(name)
    assert color not in report_common.COLORS.values() and color == report_common.color(name)
    assert json.load(open(tmp_path / 'ablations' / name / 'summary.json'))['sentiment'][name]['10']


def test_costs_and_study_costs(tmp_path, monkeypatch):
    monkeypatch.setattr(report_common, 'ROOT', str(tmp_path))
    monkeypatch.setattr(report_common, 'RES', str(tmp_path / 'results'))
    demo = 'results/demo/sentiment_seed1337'
    assert 'not yet recorded' in report_costs.costs_md(demo) and f'`{demo}/timings.tsv`' in report_costs.costs_md(demo)
    os.makedirs(tmp_path / demo)
    (tmp_path / demo / 'timings.tsv').write_text('sft\t300\nlabel\t21\ntotal\t795\nload\t0.5 0.6 0.7\n')
    (tmp_path / demo / 'frontier.png').write_bytes(b'png')
    first, second = report_costs.costs_md(demo).splitlines()
    assert first == ('`bash run.sh` took 13 min 15 s of wall time on CPU (seed 1337, sentiment; per stage: '
                     f'`{demo}/timings.tsv`), its figure: `{demo}/frontier.png`.')
    assert 'sft 300 s, label 21 s' in second and '0.5 0.6 0.7' in second
    (tmp_path / demo / 'timings.tsv').write_text('sft\t300\ntotal\t795\ncpus\t2\n')
    assert 'on a 2-core CPU' in report_costs.costs_md(demo)
    # a job a later study reuses counts once, under the first; 'unrecorded' is a job without a time; the same job
    # with another time was redone (on another machine) and counts again
    for sweep, lines in (('frontier', 'a\tunrecorded\nb\t3600\n'), ('hypotheses', 'a\tunrecorded\nb\t3600\nc\t1800\n'),
                         ('size', 'b\t900\nc\t1800\n')):
        os.makedirs(tmp_path / 'results' / sweep)
        (tmp_path / 'results' / sweep / 'timings.tsv').write_text(lines)
    md = report_costs.study_costs_md()
    assert '| the frontier | 2 (1 without a recorded time) | 1.0 one-thread CPU-hours |' in md
    assert '| the hypotheses (H1, H3, H4) | 1 | 0.5 one-thread CPU-hours |' in md
    assert '| RM size and policy size | 1 | 0.2 one-thread CPU-hours |' in md
    assert 'data efficiency' not in md.split('\n\n')[0]  # no record, no row
    # a study or a set-aside attempt whose records left the tree: its timings, in results/retired/, still count
    os.makedirs(tmp_path / 'results' / 'retired')
    (tmp_path / 'results' / 'retired' / 'size_stale_timings.tsv').write_text('c\t1800\nd\t2700\n')  # c: as in timings.tsv, once
    (tmp_path / 'results' / 'retired' / 'data_efficiency_timings.tsv').write_text('e\t3600\n')
    md = report_costs.study_costs_md()
    assert '| RM size and policy size | 2 | 1.0 one-thread CPU-hours |' in md
    assert '| data efficiency, first pass (retired) | 1 | 1.0 one-thread CPU-hours |' in md


def test_per_prompt_from_the_records():
    """REPORT says how many completions each row was scored on: best-of-N keeps one pick per prompt."""
    rows = []
    for split, n in (('val', 607), ('test', 610)):
        rows += [row('human', 'bon', 'human_reference', split, None, 0.02),
                 row('best_of_n', 'bon', 'sft+bo1', split, 0.0, 0.05, best_of=1),
                 row('best_of_n', 'bon', 'sft+bo4', split, 1.3, 0.2, best_of=4)]
        rows += [{**row(m, f'{m}_b0.1', f'{m}_b0.1/step_50', split, 4.0, 0.2, step=50), 'n_completions': 2 * n}
                 for m in ('dpo', 'rloo')]
    assert report_verdicts.per_prompt(rows) == ('2 samples per prompt for DPO and RLOO, 1 for SFT and best-of-N, '
                                                'its pick among N samples')


def test_rloo_vs_dpo_relative_to_the_room_the_task_gives():
    """(a - b) over the better method's gain above SFT, per seed, with a t-interval over seeds: a 0.01 lead on a
    task whose best method gains 0.05 is as large as a 0.1 lead where it gains 0.5."""
    assert report_common.room(0.3, 0.1, 0.0) == pytest.approx(2 / 3)
    assert report_common.room(0.04, 0.05, 0.0) == pytest.approx(-0.2)  # DPO better: its gain is the room
    assert report_common.room(-0.1, -0.2, 0.0) is None  # neither gains: no room to read against
    assert report_common.t_interval_md([0.1, 0.2, 0.3]) == '+0.20 [-0.05, +0.45] (3/3 > 0)'  # sd 0.1, t(2) = 4.303
    summ = {'frontier': {t: {m: {10: {s: {'gold_reward': sft + g} for s, g in zip((1337, 1, 2), gains)}}
                             for m, gains in (('rloo', (a, a, a)), ('dpo', (b, b, b)))}
                         for t, sft, a, b in (('sentiment', 0.1, 0.5, 0.4), ('overlap', 0.3, 0.05, 0.04))}}
    sources = {'frontier': [{'task': t, 'seed': s, 'split': 'test', 'method': 'best_of_n', 'best_of': 1,
                             'gold_reward': sft} for t, sft in (('sentiment', 0.1), ('overlap', 0.3)) for s in (1337, 1, 2)]}
    rows = [v for v in report_verdicts.verdict_rows(summ, sources) if v['what'] == 'RLOO - DPO (frontier)']
    rel = {v['task']: v['rel'] for v in rows if v['task'] != 'short'}
    assert rel['sentiment'] == pytest.approx([0.2] * 3) and rel['overlap'] == pytest.approx([0.2] * 3)
    assert [v['d'] for v in rows if v['task'] == 'overlap'][0] == pytest.approx([0.01] * 3)  # absolute: 10x smaller


def test_headline_says_where_the_budget_cuts_dpos_curve():
    """The caveat under REPORT's 10-nat verdicts: DPO's val snapshots inside the budget per seed, the nearest past it, and
    the second pass's RLOO - DPO at the same N within both budgets; nothing until every seed is in (kills counting
    RLOO's snapshots, another task's, or test ones)."""
    rows = [{'task': 'sentiment', 'split': split, 'method': m, 'seed': s, 'step': st, 'kl': kl}
            for s in (1337, 1, 2) for split in ('val', 'test') for m in ('dpo', 'rloo')
            for st, kl in ((63, 8.0 + s % 2), (126, 10.4 + s % 3 / 10), (189, 12.0))] + \
        [{'task': 'short', 'split': 'val', 'method': 'dpo', 'seed': 1, 'step': 5, 'kl': 1.0}]
    pick = lambda g: {'gold_reward': g}  # noqa: E731
    de2 = {'sentiment': {'rloo': {10: {1337: pick(0.4), 1: pick(0.5)}, 20: {1337: pick(0.8), 1: pick(0.7)}},
                         'dpo': {10: {1337: pick(0.3), 1: pick(0.5)}, 20: {1337: pick(0.5), 1: pick(0.5)}}}}
    assert report_verdicts.budget_edge_md(rows, de2) == ''  # two seeds of the second pass
    for b, g in ((10, (0.2, 0.2)), (20, (0.9, 0.6))):
        de2['sentiment']['rloo'][b][2], de2['sentiment']['dpo'][b][2] = pick(g[0]), pick(g[1])
    md = report_verdicts.budget_edge_md(rows, de2)
    assert '(both betas, 3 val snapshots per seed) have 1 of them inside it, the nearest past it at 10.5-10.6 nats' in md
    assert ('+0.033 ± 0.058 (1 of 3 seeds ahead) within 10 nats and +0.267 ± 0.058 (3 of 3 seeds ahead) within 20 nats.'
            in md)


def test_verdict_axis_gives_each_rows_pattern_per_budget_and_where_it_changes(monkeypatch):
    import report_verdicts as RV
    got = {2: 'level', 4: 'level', 6: None, 8: 'gap', 10: 'gap', 12: 'reverse gap'}

    def rows(summaries, sources, budget):
        return [dict(h='H6', what='RLOO - DPO', task='sentiment', source='frontier', got=got.get(budget, 'reverse gap')),
                dict(h='H5', what='accuracy', task='sentiment', source='h5', got='gap')]
    monkeypatch.setattr(RV, 'verdict_rows', rows)
    md = RV.verdict_axis_md({}, {}).splitlines()
    assert md[2] == ('| H6 | RLOO - DPO | sentiment | = | = | . | + | + | - | - | - | - | - | level to gap between 4 and 8; '
                     'gap to reverse gap between 10 and 12 |')
    assert md[3].endswith('| reads no budget |')


def test_a_method_the_registry_lacks_is_drawn_not_dropped_and_its_settings_read_as_they_are():
    import report_common as RC
    rows = [{'method': m} for m in ('dpo', 'human', 'ppo', 'rloo')]
    assert list(RC.with_new_methods(rows, {'dpo': 'DPO', 'rloo': 'RLOO'})) == ['dpo', 'rloo', 'ppo']
    assert RC.run_settings('dpo_lr0.0003_b0.1', 'dpo') == 'lr 0.0003, beta 0.1'
    assert RC.run_settings('ppo_b0.1_whiten', 'ppo') == 'beta 0.1, whiten'  # not 'lr iten'
    assert RC.run_settings('rloo_b3e-05', 'rloo') == 'beta 3e-05'
