"""
The verdict table (one row per claim, the paired difference over seeds), read at 10 nats and along the KL axis, with its caveat.
"""
import data_efficiency_v2 as DE2
from report_common import (METHODS, SEEDS, diff_md, load, paired, pattern, pm, room, seeds_of, sft_row,
                           t_interval_md)
from report_data_efficiency_v2 import de2_verifiers
from report_frontier import verifier_acc
from report_hypotheses import h1_end

# The verdict table: one row per claim, the paired difference over seeds at KL <= 10 nats (H5: held-out accuracy).
# (hypothesis, the paper's claim, what is measured here, summary it comes from, (a, b): a - b, task, the claim's
# prediction: 'gap' (a above b) or 'level'). Growth: (a, b, b on the SFT-sized policy), a - b wide minus SFT-sized.
VERDICTS = (
    ('H1', "isomorphic classes: RM + RL lands where DPO lands", "RLOO on DPO's implicit reward - DPO (a snapshot "
     "every 1/6 epoch)", 'h1', ('rloo_local', 'dpo_dense'), 'sentiment', 'level'),
    ('H1', "a simpler (global) RM beats the isomorphic one under RL", "RLOO on the global RM - RLOO on DPO's implicit reward",
     'h1', ('rloo', 'rloo_local'), 'sentiment', 'gap'),
    ('H1', "the same, run to its end: RL on DPO's reward reaches the DPO policy", "RLOO on DPO's implicit reward "
     "after 1000 steps - the DPO policy itself (same test prompts)", 'h1_end', ('rloo_local_long', 'dpo'), 'sentiment',
     'level'),
    ('H2', "the gap is not regularisation: it persists at one beta", 'RLOO - DPO, both beta 0.1', 'h2', ('rloo', 'dpo'),
     'sentiment', 'gap'),
    ('H3', "more offline epochs do not close the gap", 'RLOO - DPO at 12 epochs (beta 0.1)', 'h3', ('rloo', 'dpo_e12'),
     'sentiment', 'gap'),
    ('H4', "wider offline data do not close the gap", 'RLOO - DPO on SFT-sample-vs-human pairs (beta 0.1)', 'h4',
     ('rloo', 'dpo_human'), 'sentiment', 'gap'),
    ('H5', "the global RM generalises better (true, restates the question)",
     "held-out accuracy: global RM - DPO's implicit reward (4000 pairs)", 'h5', ('rm', 'dpo_b0.1'), 'sentiment', 'gap'),
    ('H5', "the same with few pairs", "the same at 1000 pairs (data efficiency's second pass: the RM trained as the "
     "frontier's, at its end)", 'h5', ('rm_v2_n1000', 'dpo_v2_n1000'), 'sentiment', 'gap'),
    ('H6', "a gap where verifying is simpler", 'RLOO - DPO (frontier)', 'frontier', ('rloo', 'dpo'), 'sentiment', 'gap'),
    ('H6', "the same, DPO seen every 5 steps", "RLOO - DPO at the frontier's 4000 pairs (data efficiency's second pass: a "
     'snapshot every 5 steps, both betas)', 'de2', ('rloo', 'dpo'), 'sentiment', 'gap'),
    ('H6', "a small verifier suffices", 'RLOO on a scratch RM of 1/8 the policy size - DPO', 'size',
     ('rloo_small', 'dpo'), 'sentiment', 'gap'),
    ('H6', "the gap grows with the policy, the verifier fixed", '(RLOO on the scratch RM - DPO): policy twice as wide - '
     'SFT-sized', 'growth', ('rloo_small', 'dpo', 'dpo'), 'sentiment', 'gap'),
    ('H6', "the same, DPO seen as often", "the same, the SFT-sized DPO with a snapshot every 1/6 epoch (the wide DPO's "
     "every 1/4)", 'growth', ('rloo_small', 'dpo', 'dpo_dense'), 'sentiment', 'gap'),
    ('H6', "the same, on-policy pairs", "the same, the wide DPO on pairs of the wide SFT's own samples", 'growth',
     ('rloo_small', 'dpo_own', 'dpo'), 'sentiment', 'gap'),
    ('H6', "no gap with two-token outputs", 'RLOO - DPO (frontier)', 'frontier', ('rloo', 'dpo'), 'short', 'level'),
    ('H6', "no gap when the verifier must know the answer", 'RLOO - DPO (frontier)', 'frontier', ('rloo', 'dpo'),
     'overlap', 'level'))


def gold_at_kl(run_rows, sft, kl):
    """The gold reward along one run (SFT at 0 nats, then its snapshots in step order) where its KL first reaches
    kl, linear between the two points around it; None if it never does."""
    pts = [(0.0, sft['gold_reward'])] + [(r['kl'], r['gold_reward']) for r in sorted(run_rows, key=lambda r: r['step'])]
    if kl == 0:
        return sft['gold_reward']
    for (k0, g0), (k1, g1) in zip(pts, pts[1:]):
        if min(k0, k1) <= kl <= max(k0, k1) and k0 != k1:
            return g0 + (kl - k0) / (k1 - k0) * (g1 - g0)
    return None


def matched(summ, rows, task, a, b, budget):
    """{seed: a's chosen test gold - b's test gold at a's KL}, b read along the run of its own chosen point (its
    only run when it chose SFT): the same comparison with the KL offset between the two picks taken out."""
    out = {}
    for s, pa in summ.get(task, {}).get(a, {}).get(budget, {}).items():
        pb = summ[task].get(b, {}).get(budget, {}).get(s)
        test = [r for r in rows if r['task'] == task and r['seed'] == s and r['split'] == 'test']
        runs = sorted({r['run'] for r in test if r['method'] == b})
        if not pb or not runs:
            continue
        run = pb['run'] if pb['run'] in runs else runs[0] if len(runs) == 1 else None
        g = run and gold_at_kl([r for r in test if r['run'] == run and r['method'] == b], sft_row(test), pa['kl'])
        if g is not None:
            out[s] = pa['gold_reward'] - g
    return out


def verdict_rows(summaries, sources=None, budget=10):
    """One dict per VERDICTS row: its fields, d (the per-seed differences) and dm (the same at matched KL)."""
    acc = {**verifier_acc(), **{(t, f'{kind}_v2_n{n}'): {s: a for s, (a, _) in v.items()}
                                for (t, n), kinds in de2_verifiers().items() for kind, v in kinds.items()}}
    sources = sources or {}
    out = []
    for h, claim, what, source, pair, task, predicted in VERDICTS:
        a, b = pair[:2]
        parts = []
        at_kl = lambda k, b: matched(summaries.get(k, {}), sources.get(k, []), task, a, b, budget)  # noqa: E731
        if source == 'h5':
            pa, pb = acc.get((task, a), {}), acc.get((task, b), {})
            d, dm = [pa[s] - pb[s] for s in pa if s in pb], []
        elif source == 'h1_end':  # the long run's last snapshot against the DPO policy, per seed
            d, dm = [v['steps'][-1][3] for v in h1_end(load('hypotheses')).values()], []
        elif source == 'growth':  # per seed, the wide policy's difference minus the SFT-sized policy's
            b_base = pair[2]
            wide = paired(summaries.get('size_wide', {}), task, a, b, budget)
            base = paired(summaries.get('size', {}), task, a, b_base, budget)
            d = [wide[s] - base[s] for s in wide if s in base]
            wide_m, base_m = at_kl('size_wide', b), at_kl('size', b_base)
            dm = [wide_m[s] - base_m[s] for s in wide_m if s in base_m]
            parts = [list(x.values()) for x in (wide, base, wide_m, base_m)]  # each policy's own a - b, for the reading
        else:
            d = list(paired(summaries.get(source, {}), task, a, b, budget).values())
            dm = list(at_kl(source, b).values())
        rel = []
        if a.startswith('rloo') and b.startswith('dpo') and source not in ('growth', 'h1_end'):  # RLOO vs DPO: the room
            summ, test = summaries.get(source, {}).get(task, {}), [r for r in sources.get(source, []) if r['split'] == 'test']
            for s, pa in summ.get(a, {}).get(budget, {}).items():
                pb, sft = summ.get(b, {}).get(budget, {}).get(s), [r for r in test if r['task'] == task and r['seed'] == s]
                if pb and sft and (x := room(pa['gold_reward'], pb['gold_reward'], sft_row(sft)['gold_reward'])) is not None:
                    rel.append(x)
        out.append(dict(h=h, claim=claim, what=what, source=source, task=task, predicted=predicted, d=d, dm=dm, rel=rel, parts=parts,
                        got=pattern(d) if len(d) >= 3 else None, got_m=pattern(dm) if len(dm) > 1 else None))
    return out


def verdict_md(summaries, sources=None, budget=10, rows=None):
    """sources: {summary key: the rows it was made from}, for the matched-KL column."""
    L = ['| | the paper | measured here | task | difference, mean ± sd over seeds | pattern | verdict | '
         "the same at matched KL: b read at a's KL | RLOO vs DPO relative to the room: mean [95% t-interval] |",
         '|---|---|---|---|---|---|---|---|---|']
    for v in rows or verdict_rows(summaries, sources, budget):
        h, claim, what, task, d, dm, got = v['h'], v['claim'], v['what'], v['task'], v['d'], v['dm'], v['got']
        if len(d) < 3:
            so_far = ': ' + ', '.join(f'{x:+.3f}' for x in d) if d else ''
            L.append(f'| {h} | {claim} | {what} | {task} | {len(d)} of 3 seeds run{so_far} | - | pending | - | - |')
            continue
        L.append(f'| {h} | {claim} | {what} | {task} | {diff_md(d)} | {got} | '
                 f'{"agrees" if got == v["predicted"] else "disagrees"} | {f"{diff_md(dm)}, {pattern(dm)}" if dm else "-"} | '
                 f'{t_interval_md(v["rel"]) if len(v["rel"]) > 1 else "-"} |')
    return '\n'.join(L)


AXIS = (2, 4, 6, 8, 10, 12, 15, 20, 25, 30)  # experiments/frontier_v3.py's budgets
SIGNS = {'gap': '+', 'reverse gap': '-', 'level': '=', None: '.'}


def verdict_axis_md(summaries, sources):
    """Each verdict row's pattern at every budget of the KL axis, from its existing records: '+' gap, '-' reverse
    gap, '=' level, '.' where fewer than 3 seeds have a pick (the second pass has test picks at 10 and 20 nats only);
    then the budgets where the pattern changes. The held-out accuracies (H5) and H1 run to its end read no budget."""
    per = {b: verdict_rows(summaries, sources, b) for b in AXIS}
    L = ['| | measured here | task | ' + ' | '.join(f'{b}' for b in AXIS) + ' | where the pattern changes |',
         '|---|---|---|' + '---|' * len(AXIS) + '---|']
    for i, v in enumerate(per[AXIS[0]]):
        if v['source'] in ('h5', 'h1_end'):
            L.append(f"| {v['h']} | {v['what']} | {v['task']} | " + ' | '.join('' for _ in AXIS) + ' | reads no budget |')
            continue
        got = [(b, per[b][i]['got']) for b in AXIS]
        seen = [(b, g) for b, g in got if g is not None]
        changes = [f'{g0} to {g1} between {b0} and {b1}' for (b0, g0), (b1, g1) in zip(seen, seen[1:]) if g0 != g1]
        L.append(f"| {v['h']} | {v['what']} | {v['task']} | " + ' | '.join(SIGNS[g] for _, g in got) +
                 f" | {'; '.join(changes) if changes else (f'{seen[0][1]} wherever read' if seen else '-')} |")
    return '\n'.join(L)


def matched_sentence(vrows):
    """What the matched-KL column changes, in words, from the verdict rows themselves."""
    changed = [v for v in vrows if v['got'] and v['got_m'] and v['got'] != v['got_m']]
    if not changed:
        return 'It changes no pattern.'
    return (f'It changes the pattern of {len(changed)} row{"s" * (len(changed) > 1)}: ' +
            '; '.join(f"{v['h']} \"{v['claim']}\" ({v['task']}) goes from \"{v['got']}\" to \"{v['got_m']}\""
                      for v in changed) + '. The verdict column stays on the rule, as fixed.')


def budget_edge_md(rows, de2, budget=10, n=4000):
    """The 10-nat verdicts' caveat (REPORT): how many val snapshots the frontier's DPO runs have inside the budget on sentiment, and
    RLOO - DPO at the same N in the second pass of data efficiency (de2: de2_summary at n; a snapshot every 5 steps,
    both betas), within this budget and the next."""
    val = [r for r in rows if (r['task'], r['split'], r['method']) == ('sentiment', 'val', 'dpo') and r['step'] is not None]
    seeds = sorted({r['seed'] for r in val}, key=SEEDS.index)
    inside = sorted({sum(r['kl'] <= budget for r in val if r['seed'] == s) for s in seeds})
    past = [min(r['kl'] for r in val if r['seed'] == s and r['kl'] > budget) for s in seeds]
    d = [list(paired(de2, 'sentiment', 'rloo', 'dpo', b).values()) for b in DE2.BUDGETS]
    if not val or min(map(len, d)) < len(SEEDS):
        return ''
    return (f"\n\nThe `sentiment` gap within {budget} nats is read at the edge of DPO's curve: the frontier's DPO runs "
            f"(both betas, {len(val) // len(seeds)} val snapshots per seed) have {'-'.join(map(str, inside))} of them "
            f"inside it, the nearest past it at {min(past):.1f}-{max(past):.1f} nats. The data-efficiency second pass, at "
            f"the same {n} pairs with a snapshot every 5 steps and both betas, measures RLOO - DPO as "
            + ' and '.join(f"{pm(x)} ({sum(v > 0 for v in x)} of {len(x)} seeds ahead) "
                           f'within {b} nats' for b, x in zip(DE2.BUDGETS, d)) + '.')


def per_prompt(rows, trained=('dpo', 'rloo'), task='sentiment'):
    """'2 samples per prompt for DPO and RLOO, 1 for SFT and ...': completions per prompt of the trained methods (one
    label for all of them when given a dict {label: methods}), SFT and best-of-N, from the records (SFT is the first
    best-of-N sample; best-of-N keeps one pick per prompt)."""
    n = counts(rows)
    rows = [r for r in rows if r['task'] == task]
    trained = trained if isinstance(trained, dict) else {METHODS[m].split(' (')[0]: (m,) for m in trained}
    what = {**{lab: [r for r in rows if r['method'] in ms] for lab, ms in trained.items()},
            'SFT': [r for r in rows if r['method'] == 'best_of_n' and r['best_of'] == 1],
            'best-of-N, its pick among N samples': [r for r in rows if r['method'] == 'best_of_n' and r['best_of'] != 1]}
    k = {lab: '/'.join(map(str, sorted({r['n_completions'] // n[r['split']] for r in rs}))) for lab, rs in what.items()}
    groups = {}
    for lab, v in k.items():
        groups.setdefault(v, []).append(lab)
    parts = [f"{v}{(' sample' if v == '1' else ' samples') + ' per prompt' if i == 0 else ''} for {' and '.join(labs)}"
             for i, (v, labs) in enumerate(sorted(groups.items(), reverse=True))]
    return ', '.join(parts)


def counts(rows):
    """Prompts per split (the human reference's completions) and samples per prompt, from the records."""
    n = {s: next(r['n_completions'] for r in rows if r['split'] == s and r['method'] == 'human') for s in ('val', 'test')}
    k = {r['n_completions'] // n[r['split']] for r in rows if r['method'] == 'dpo'}
    return {**n, 'k': k.pop() if len(k) == 1 else '/'.join(map(str, sorted(k)))}
