"""The KL-axis readings, pinned on hand-made records before any of the sweep's numbers: the val choice per budget
read on test by checkpoint, the paired gap per budget, the ceiling, the band count and the sentence."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
import report_axis as A  # noqa: E402


def rec(seed, run, split, method, kl, gold, path, **kw):
    return {'task': 'sentiment', 'seed': seed, 'run': run, 'split': split, 'method': method, 'kl': kl,
            'gold_reward': gold, 'path': path, 'name': path, **kw}


def block(seed, lift=0.0, dlift=0.0):
    """One seed's records: SFT at 0.1; DPO's snapshots gain along KL up to 0.5 at 12 nats (+dlift); RLOO's more
    (+lift); on test every checkpoint scores its val gold - 0.01 (so a wrong lookup shows)."""
    rows = [rec(seed, 'bon', s, 'best_of_n', k, g - (s == 'test') * 0.01, 'sft', best_of=n)
            for s in ('val', 'test') for n, k, g in ((1, 0.0, 0.1), (4, 0.6, 0.2), (64, 3.2, 0.35))]
    val = {'dpo': [(3.0, 0.2 + dlift), (7.0, 0.4 + dlift), (12.0, 0.5 + dlift), (21.0, 0.45 + dlift)],
           'rloo': [(1.5, 0.15), (5.0, 0.3 + lift), (11.0, 0.55 + lift), (19.0, 0.7 + lift), (28.0, 0.75 + lift)]}
    for m, pts in val.items():
        rows += [rec(seed, f'{m}_b0.1', 'val', m, k, g, f'{m}/{i}') for i, (k, g) in enumerate(pts)]
        rows += [rec(seed, f'{m}_picks', 'test', m, k + 0.1, g - 0.01, f'{m}/{i}') for i, (k, g) in enumerate(pts)]
        rows += [rec(seed, f'{m}_picks', 'test', m, 0.0, 0.09, 'sft'), rec(seed, f'{m}_picks', 'test', 'human', None, 0.0, None)]
    return rows


def test_picks_read_the_val_choice_on_test_by_checkpoint():
    rows = block(1)
    p = A.picks(rows, 'sentiment', 1, 'dpo')
    assert p[2]['path'] == 'sft' and p[2]['gold_reward'] == pytest.approx(0.09)  # nothing inside 2 nats: SFT
    assert p[4]['path'] == 'dpo/0' and p[10]['path'] == 'dpo/1' and p[12]['path'] == 'dpo/2'
    assert p[30]['path'] == 'dpo/2'  # 21 nats is worse on val: the ceiling stays at 12
    assert p[12]['gold_reward'] == pytest.approx(0.49) and p[12]['split'] == 'test'
    b = A.picks(rows, 'sentiment', 1, 'best_of_n')
    assert b[2]['best_of'] == 4 and b[4]['best_of'] == 64 and b[4]['split'] == 'test'


def test_only_complete_blocks_are_read():
    rows = block(1) + [r for r in block(2) if r['run'] != 'rloo_picks']
    assert A.complete(rows, 'sentiment') == [1]
    assert list(A.summary(rows)['sentiment']['sft']) == [1]


def test_gap_per_budget_is_paired_by_seed_and_the_ceiling_is_the_largest_budget():
    rows = block(1337, 0.0) + block(1, 0.1, 0.05) + block(2, 0.2, -0.05)
    summ = A.summary(rows)
    g = A.C.paired(summ, 'sentiment', 'rloo', 'dpo', 12)  # rloo 0.55 + lift at 11 nats against dpo 0.5 + dlift at 12
    assert g == pytest.approx({1337: 0.05, 1: 0.10, 2: 0.30})
    m, sd, lo, hi = A.interval(list(g.values()))
    assert m == pytest.approx(0.15) and sd == pytest.approx(0.0175 ** 0.5)
    assert lo == pytest.approx(0.15 - 4.303 * 0.0175 ** 0.5 / 3 ** 0.5)
    assert A.C.paired(summ, 'sentiment', 'rloo', 'dpo', 2)[1] == pytest.approx(0.15 - 0.1)  # RLOO's 1.5-nat one vs SFT
    assert A.ceiling(summ, 'sentiment', 'rloo')[2] == pytest.approx((0.94, 28.1))
    assert A.ceiling(summ, 'sentiment', 'dpo')[2] == pytest.approx((0.44, 12.1))
    # over the room: (rloo - dpo) / (the better one's gain over SFT's test gold, 0.09)
    assert A.room(summ, 'sentiment', 'rloo', 'dpo', 12)[1337] == pytest.approx(0.05 / (0.54 - 0.09))


def test_sentence_names_where_each_pattern_holds():
    gaps = {2: {1: 0.01, 2: -0.02, 3: 0.0}, 4: {1: 0.02, 2: -0.01, 3: 0.01}, 6: {1: 0.2, 2: 0.3, 3: 0.25},
            8: {1: 0.3, 2: 0.2, 3: 0.4}, 10: {1: -0.3, 2: -0.2, 3: -0.25}}
    assert A.sentence(gaps) == ('level from 2 to 4 nats (RLOO - DPO -0.00 to +0.01); RLOO ahead from 6 to 8 nats '
                                '(RLOO - DPO +0.25 to +0.30); DPO ahead at 10 nats (RLOO - DPO -0.25)')


def test_band_check_counts_thin_bands_per_block_and_method():
    rows = block(1)
    bands = A.band_check(rows)
    # DPO's val KLs 3, 7, 12, 21: every band from 2 to 20 has fewer than 2
    assert bands[('sentiment', 1, 'dpo')] == list(range(2, 20, 2))
    rows += [rec(1, 'dpo_b0.1_dense', 'val', 'dpo', k, 0.3, f'd{k}') for k in (2.5, 4.1, 4.2, 5.5, 6.1, 8, 9, 10, 11, 12.5,
                                                                             13, 14, 15, 16, 17, 18, 19, 19.5, 20.5)]
    assert A.band_check(rows)[('sentiment', 1, 'dpo')] == []


def test_markdown_and_figures_from_records(tmp_path, monkeypatch):
    rows = block(1337, 0.0) + block(1, 0.1) + block(2, 0.2)
    made = []
    monkeypatch.setattr(A.plt.Figure, 'savefig', lambda self, path, **kw: made.append(os.path.basename(path)))
    md = A.axis_md(rows)
    assert made == ['frontier_v3_sentiment.png', 'frontier_v3_gaps.png']
    assert '| 12 |' in md and '+0.150 ± 0.100' in md and '(3/3)' in md
    assert 'holds for 0 of 6' in md and 'In words:' in md


def test_short_md_shows_what_rloo_converges_to_beside_dpo_and_best_of_64():
    def val(seed, run, step, top, gold, kl, method, **kw):
        return {'task': 'short', 'seed': seed, 'run': run, 'split': 'val', 'method': method, 'step': step,
                'top_words': top, 'gold_reward': gold, 'kl': kl, **kw}
    rows = []
    for seed, word in ((1337, 'l'), (1, 'great')):
        ex = [{'completion': f' {word} {word}', 'gold': 0.72}] * 3
        rows += [val(seed, 'rloo_b0.03', 25, [['x', 5.0]], 0.1, 3.0, 'rloo', examples=[]),
                 val(seed, 'rloo_b0.03', 200, [[word, 199.0]], 0.72, 18.7, 'rloo', examples=ex),
                 val(seed, 'dpo_b0.03', 375, [['like', 73.0]], 0.37, 8.2, 'dpo', examples=[]),
                 val(seed, 'bon', None, [['l', 17.5]], 0.32, 3.2, 'best_of_n', best_of=64)]
    md = A.short_md(rows).splitlines()
    assert [line.split(' | ')[0] for line in md[2:]] == ['| 1337', '| 1']  # the sweep's seed order
    assert '"l" +199 (+0.72, 18.7)' in md[2] and '`l l` 0.72' in md[2] and '"like" +73 (+0.37, 8.2)' in md[2]
    assert '"great" +199' in md[3] and md[3].endswith('"l" +18 |')


def test_headline_gives_the_gap_at_a_few_budgets_the_ceilings_and_a_sentence():
    rows = block(1337, 0.0) + block(1, 0.1, 0.05) + block(2, 0.2, -0.05)
    rows = [rec(1337, 'bon', s, 'human', None, 0.0, None, n_completions=n, best_of=None)
            for s, n in (('val', 607), ('test', 610))] + rows  # the records' human rows say how many prompts
    md = A.headline_md(A.summary(rows), rows).splitlines()
    assert md[0].count('RLOO - DPO within') == len(A.HEADLINE) and md[2].startswith('| sentiment (3) |')
    cells = md[2].split(' | ')
    assert cells[2].endswith(' ± 0.132 [-0.329, +0.329] (1/3)') and abs(float(cells[2].split()[0])) < 1e-9  # 10 nats: RLOO's 5-nat pick against DPO's 7: -0.10, -0.05, +0.15
    assert cells[3] == '+0.150 ± 0.132 [-0.179, +0.479] (3/3)'  # 15 nats: RLOO's 11 against DPO's 12: +0.05, +0.10, +0.30
    assert cells[5:] == ['+0.490 ± 0.050 at 12.1 nats', '+0.840 ± 0.100 at 28.1 nats', '+0.340 ± 0.000 at 3.2 nats |']
    assert md[4].startswith('- **sentiment**: ') and md[5] == '- **short**: no block of the sweep is complete yet.'
    assert 'all 610 test prompts' in md[-1] and 'the 607 val prompts' in md[-1]


def test_short_line_says_what_rloo_writes_at_its_last_snapshot_per_seed():
    def val(seed, step, word, text):
        return {'task': 'short', 'seed': seed, 'split': 'val', 'run': 'rloo_b0.03', 'method': 'rloo', 'step': step,
                'top_words': [[word, 199.0]], 'examples': [{'completion': text}], 'gold_reward': 0.72, 'kl': 18.7}
    rows = [val(1337, 100, 'x', ' x y'), val(1337, 200, 'l', ' l l'), val(1, 200, 'great', ' great great')]
    assert A.short_line(rows) == ('seed 1337 `l l` ("l" +199 uses per 100 completions beyond SFT\'s, gold +0.72, 19 nats); '
                                  'seed 1 `great great` ("great" +199 uses per 100 completions beyond SFT\'s, gold +0.72, 19 nats)')


def test_own_words_show_each_methods_pick_on_the_same_prompts():
    rows = block(1337) + block(1)
    for r in rows:
        if r['split'] == 'test' and r['method'] != 'human':
            r['examples'] = [{'prompt': f'p{i}', 'completion': f" {r['path']}|{i}\n", 'gold': r['gold_reward']}
                             for i in range(3)]
    md = A.own_words_md(rows, budget=10).splitlines()
    assert md[0].startswith('sentiment, seed 1337,') and len(md) == 2 + 2 + 3
    assert md[2].startswith('| prompt | SFT (0.0 nats) | DPO (offline) (7.1 nats) | RLOO (RM + RL) (5.1 nats) |')
    # each cell is that pick's completion of the same prompt, escaped for a table
    assert md[4] == ('| `p0` | `sft\\|0 ⏎` (+0.09) | `dpo/1\\|0 ⏎` (+0.39) | `rloo/1\\|0 ⏎` (+0.29) | '
                     '`sft\\|0 ⏎` (+0.34) |')
    rows[0]['examples'] = None  # the human row; SFT's completion with a backtick is fenced by two
    sft = next(r for r in rows if r['run'] == 'bon' and r['split'] == 'test' and r['best_of'] == 1 and r['seed'] == 1337)
    sft['examples'][1]['completion'] = ' a `quote'
    assert '| `p1` | `` a `quote `` (+0.09) |' in A.own_words_md(rows, budget=10)


def test_one_seed_has_no_sd_and_no_interval():
    summ = A.summary(block(1337))
    assert A.ci_md([0.25]) == '+0.250 (1/1)' and A.ci_md([0.1, 0.3]).startswith('+0.200 ± 0.141 [')
    assert A.ceiling_md(summ, 'sentiment', 'rloo') == '+0.740 at 28.1 nats'
    assert A.gold_md(summ['sentiment']['dpo'][10]) == '+0.390 (7.1)'


def test_no_pattern_is_read_from_fewer_than_three_seeds():
    assert A.sentence({2: {1: 0.3, 2: 0.2}, 4: {1: 0.3, 2: 0.2}}) == '2 seeds so far: no pattern is read from fewer than 3'


def test_an_ablation_is_read_against_both_methods_on_the_seeds_it_has_scored(tmp_path, monkeypatch):
    """An ablation's records (results/ablations_v3/NAME/) hold its own method: read like RLOO, paired with RLOO and
    DPO by seed, on the seeds whose picks it has scored; its figure beside its records."""
    import json
    monkeypatch.setattr(A.C, 'RES', str(tmp_path))
    rows = block(1337) + block(1, 0.1) + block(2, 0.2)
    mine = [dict(r, method='ppo', run=r['run'].replace('rloo', 'ppo'), setting='--algo ppo',
                 gold_reward=r['gold_reward'] + 0.02 * (r['method'] == 'rloo'))
            for r in block(1337) + block(1, 0.1) if r['run'].startswith('rloo')]
    d = tmp_path / 'ablations_v3' / 'ppo'
    d.mkdir(parents=True)
    (d / 'sentiment_seed1337_ppo.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in mine))
    # its cost: its own jobs only, not the sweep's SFT it reuses (listed in both timings.tsv, same seconds)
    (tmp_path / 'frontier_v3').mkdir()
    (tmp_path / 'frontier_v3' / 'timings.tsv').write_text('out/frontier_v3/seed1337/sft\t3600.0\n')
    (d / 'timings.tsv').write_text('out/frontier_v3/seed1337/sft\t3600.0\nout/ablations_v3/ppo/a\t5400.0\n'
                                   'out/ablations_v3/ppo/b\t1800.0\n')
    md = A.ablations_md(rows)
    assert 'Cost: 2.00 one-thread CPU-hours over its 2 jobs of its own' in md
    assert '### ppo (`--ablate` `--algo ppo`)' in md and (d / 'ppo_sentiment.png').stat().st_size > 0
    assert '**sentiment** (2 seeds;' in md  # seed 2 has no ppo picks: not read
    line = next(line for line in md.splitlines() if line.startswith('| 12 |'))
    # ppo is RLOO + 0.02 on every checkpoint: its pick is RLOO's, 0.02 ahead of RLOO on both seeds
    assert '| +0.020 ± 0.000 [+0.020, +0.020] (2/2) |' in line
    assert 'no pattern is read from fewer than 3' in md


def test_progress_counts_complete_blocks_over_the_sweeps_blocks():
    rows = block(1337) + block(1) + [r for r in block(2) if r['run'] != 'dpo_picks']
    assert A.progress(rows) == f'2 of {3 + 3 + 5} blocks complete'


def test_short_picks_say_what_each_methods_ceiling_pick_writes():
    rows = [dict(r, task='short') for r in block(1337) + block(1) + block(2)]
    for r in rows:
        r['top_words'] = [[r['path'], 150.0], ['x', 0.2]]
        r['examples'] = [{'prompt': 'p', 'completion': f" {r['path']}|\n", 'gold': r['gold_reward']}]
    md = A.short_picks_md(rows).splitlines()
    assert len(md) == 2 + len(A.V.SEEDS['short'])
    # the pick at 30 nats: RLOO's last snapshot (the val best), DPO's at 12 nats; words under +1 are left out
    assert md[2] == '| 1337 | "rloo/4" +150 (+0.74, 28.1) | `rloo/4\\| ⏎` | "dpo/2" +150 (+0.49, 12.1) | `dpo/2\\| ⏎` |'
    assert A.short_picks_md([r for r in rows if r['run'] != 'rloo_picks']) == ''  # no complete seed: nothing
