"""
Data efficiency, second pass (experiments/data_efficiency_v2.py): a method's value at N is its val-chosen test row,
per budget, over both betas; best-of-n by each N's RM, n chosen on val.
"""
import glob
import json
import os
import re
import statistics

import data_efficiency_v2 as DE2
import report_common as C
from report_common import SEEDS, TASKS, mean_sd, room, t_interval_md
from report_data_efficiency import bon_pick, de_plot, de_table, mult_cell

DE2_METHODS = {'dpo': 'DPO (offline)', 'rloo': 'RLOO (RM + RL)', 'best_of_n': 'best-of-n (RM)'}
DE2_PAIRS = (('rloo', 'dpo'), ('best_of_n', 'dpo'))


def de2_points(rows, budget):
    """{task: {method: {N: {seed: test row}}}} at one budget."""
    out = {}
    for r in rows:
        if r['split'] == 'test' and r['method'] in ('dpo', 'rloo') and r['setting'].endswith(f'_kl{budget}'):
            n = int(r['setting'].split('_')[0][1:])
            out.setdefault(r['task'], {}).setdefault(r['method'], {}).setdefault(n, {})[r['seed']] = r
    for task, seed in sorted({(r['task'], r['seed']) for r in rows if r['run'] == 'bon' and r['split'] == 'test'}):
        bon = {s: [r for r in rows if (r['task'], r['seed'], r['run'], r['split']) == (task, seed, 'bon', s)]
               for s in ('val', 'test')}
        for n in DE2.NS[task]:
            test = bon_pick(bon, f'rm_n{n}', budget)
            if test:
                out.setdefault(task, {}).setdefault('best_of_n', {}).setdefault(n, {})[seed] = test
    return out


def de2_checks(rows):
    """Per budget: (runs, runs with fewer than 3 val snapshots inside the budget, test picks that are SFT itself,
    test picks); a run's dense rerun counts as the run (its distinct steps)."""
    sft = {(r['task'], r['seed']): r['path'] for r in rows if r['run'] == 'bon' and r['split'] == 'val' and r['best_of'] == 1}
    runs = {}
    for r in rows:
        if r['split'] == 'val' and r['method'] in ('dpo', 'rloo'):
            runs.setdefault((r['task'], r['seed'], r['run'].removesuffix('_dense')), {})[r['step']] = r['kl']
    out = {}
    for b in DE2.BUDGETS:
        picks = [r for r in rows if r['split'] == 'test' and r['method'] in ('dpo', 'rloo') and r['setting'].endswith(f'_kl{b}')]
        out[b] = (len(runs), sum(sum(k <= b for k in kls.values()) < 3 for kls in runs.values()),
                  sum(r['path'] == sft.get((r['task'], r['seed'])) for r in picks), len(picks))
    return out


def de2_dense(rows):
    """(runs trained again densely, those whose rerun matches the first run's val KL and gold to 1e-6 at every step
    both have): the rerun must be the same run, seen more often."""
    val = {(r['task'], r['seed'], r['run'], r['step']): (r['kl'], r['gold_reward'])
           for r in rows if r['split'] == 'val' and r['method'] in ('dpo', 'rloo')}
    dense = {(t, s, run) for t, s, run, _ in val if run.endswith('_dense')}

    def same(t, s, run):
        first = run.removesuffix('_dense')
        return all(max(abs(a - b) for a, b in zip(v, val[t, s, first, step])) < 1e-6
                   for (t2, s2, r2, step), v in val.items() if (t2, s2, r2) == (t, s, run) and (t, s, first, step) in val)
    return len(dense), sum(same(*d) for d in dense)


def de2_verifiers():
    """{(task, N): {'rm': {seed: (acc, loglik)}, 'dpo': {...}}}: each N's RM at its end and the DPO (beta 0.1)
    implicit reward at its end, on the 500 val pairs."""
    out = {}
    for path in glob.glob(os.path.join(C.RES, 'data_efficiency_v2', 'logs', 'seed*_*.jsonl')):
        m = re.fullmatch(r'seed(\d+)_([a-z]+)_(rm|dpo_b0\.1)_n(\d+)\.jsonl', os.path.basename(path))
        ev = [r for r in map(json.loads, open(path)) if 'val_pref_acc' in r] if m and int(m[4]) in DE2.NS[m[2]] else []
        if ev:
            out.setdefault((m[2], int(m[4])), {}).setdefault(m[3][:3], {})[int(m[1])] = (ev[-1]['val_pref_acc'],
                                                                                       ev[-1]['val_pref_loglik'])
    return out


def de2_changes_md(rows):
    """What changed from the first pass (retired; data_efficiency_v2.py's docstring), what each change was for, and
    what it did here, measured from this pass's records ('-' where a change only saves CPU)."""
    checks, (n_dense, same) = de2_checks(rows), de2_dense(rows)
    picks = [r for r in rows if r['split'] == 'test' and r['method'] in ('dpo', 'rloo') and r['setting'].endswith('_kl10')]
    acc = de2_verifiers().get(('sentiment', 1000), {}).get('rm', {})
    acc = f'{statistics.mean(a for a, _ in acc.values()):.3f}' if acc else '-'
    off = sum(m['sign'] == '>' for t in TASKS for m in de_table(de2_points(rows, 10), t, pairs=(('rloo', 'dpo'),)).values())
    n20 = sum(len(de_table(de2_points(rows, 20), t, pairs=(('rloo', 'dpo'),))) for t in TASKS)
    return '\n'.join([
        '| first pass | second pass | what it is for | what it did here |', '|---|---|---|---|',
        '| snapshots at a fraction of each run | every 5 steps to step 60, then every 20, for both methods at every N | '
        "long runs' first snapshot past the budget (SFT picked) | runs with < 3 val snapshots inside 10 nats: "
        f'{checks[10][1]} of {checks[10][0]}, test picks that are SFT: {checks[10][2]} of {checks[10][3]} |',
        "| RM kept at its best val likelihood (`--keep_best`) | the frontier's RM at every N: 2 epochs, at least 250 "
        f"steps, its end | RMs kept at their first eval, with almost no scale | sentiment's RM at N = 1000, val "
        f'accuracy: {acc} |',
        '| one beta per method | 0.1 and 0.03 for both DPO and RLOO, chosen on val per N | unequal tuning | test picks '
        f"within 10 nats from a beta-0.03 run: {sum('_b0.03_' in (r['path'] or '') for r in picks)} of {len(picks)} |",
        "| N to 8000 | N to 16000 on sentiment and overlap (short: 8000, all its labeller supplies) | DPO's curve ending "
        f'before it catches up | RLOO multipliers past the measured range ("> max"), 10 nats: {off} |',
        '| 6 values of N on every task, val on every prompt twice | 5 on sentiment, 3 on short and overlap; val on 300 '
        'prompts once (test unchanged) | the cost | - |',
        f'| one budget (10 nats) | 10 and 20 nats | no room at small N | multipliers at 20 nats: {n20} |',
        "| best-of-64, online DPO | best-of-16, no online DPO | the cost (the first pass's largest single item) | - |",
        '| - | a run still left with < 3 val snapshots inside a budget is trained again (the same run, bitwise), a '
        'snapshot at every step up to its first one past the budget | a run that crosses the budget between two '
        f'snapshots | {n_dense} runs trained again; {same} match their first run at every shared step |'])


def de2_md(rows):
    """The second pass's tables: per task and budget the curves and the multipliers and RLOO - DPO relative to the
    room; the protocol's checks; the verifiers at each N."""
    if not rows:
        return '`python experiments/data_efficiency_v2.py` has written no records yet.'
    L = [de2_changes_md(rows), '', '| snapshots | budget | runs scored on val | runs with < 3 val snapshots inside it | test picks that are SFT itself |',
         '|---|---|---|---|---|']
    spacing = 'every 5 steps to 60, then every 20 (every step to the edge where that left < 3)'
    L += [f'| {spacing} | {b} nats | {n} | {few} | {s} of {p} |' for b, (n, few, s, p) in de2_checks(rows).items()]
    n_dense, same = de2_dense(rows)
    L += ['', f'Runs trained again with a snapshot at every step to the budget\'s edge: {n_dense}; of them, {same} match the '
          'first run\'s val KL and gold at every step both have (the same run, seen more often).', '']
    sft = {(r['task'], r['seed']): r['gold_reward'] for r in rows
           if r['run'] == 'bon' and r['split'] == 'test' and r['best_of'] == 1}
    for budget in DE2.BUDGETS:
        points = de2_points(rows, budget)
        for task in TASKS:
            c, ns = points.get(task), DE2.NS[task]
            if not c:
                continue
            if de_plot(points, task, ns, budget, DE2_METHODS, 'data_efficiency_v2_{task}_kl{budget}.png'):
                L += [f'![data efficiency, second pass, {task}, {budget} nats]'
                      f'(results/data_efficiency_v2_{task}_kl{budget}.png)', '']
            L += [f"**{task}, KL <= {budget} nats**: test gold reward of the val-chosen checkpoint (both betas and SFT "
                  "the candidates), mean ± sd over seeds (how many seeds):", '',
                  '| method | ' + ' | '.join(f'N = {n}' for n in ns) + ' |', '|---' * (len(ns) + 1) + '|']
            for method, label in DE2_METHODS.items():
                cells = []
                for n in ns:
                    v = [r['gold_reward'] for r in c.get(method, {}).get(n, {}).values()]
                    cells.append('-' if not v else f'{mean_sd(v)[0]:+.3f}' + (f' ± {mean_sd(v)[1]:.3f}' if len(v) > 1 else '')
                                 + f' ({len(v)})')
                L.append(f'| {label} | ' + ' | '.join(cells) + ' |')
            t = de_table(points, task, pairs=DE2_PAIRS)
            if t:
                L += ['', "Pairs multiplier N'/N (DPO's seed-mean curve reaching the method's value at N), 95% bootstrap "
                      'interval over seeds:', '', '| reached by | ' + ' | '.join(f'N = {n}' for n in ns) + ' |',
                      '|---' * (len(ns) + 1) + '|']
                for a, b in DE2_PAIRS:
                    cells = [f"{mult_cell(t[k], n)} ({len(t[k]['seeds'])} seeds)" if (k := f'{a}/{b}@{n}') in t else '-'
                             for n in ns]
                    L.append(f'| {DE2_METHODS[a]} | ' + ' | '.join(cells) + ' |')
            rel = {n: [x for s in c.get('rloo', {}).get(n, {}) if s in c.get('dpo', {}).get(n, {}) and (task, s) in sft
                       and (x := room(c['rloo'][n][s]['gold_reward'], c['dpo'][n][s]['gold_reward'], sft[task, s])) is not None]
                   for n in ns}
            if any(rel.values()):
                L += ['', "RLOO - DPO over the better one's gain above SFT (relative to the room), mean [95% t-interval "
                      'over seeds]:', '', '| | ' + ' | '.join(f'N = {n}' for n in ns) + ' |', '|---' * (len(ns) + 1) + '|',
                      '| RLOO - DPO, relative | ' + ' | '.join(t_interval_md(v) if v else '-' for v in rel.values()) + ' |']
            L.append('')
    L += ['**Reading, by a rule fixed before the last seed**: ' + de2_reading_md(rows), '']
    ver = de2_verifiers()
    if ver:
        L += ['Each N\'s verifier on the 500 val pairs at the end of training, mean over seeds: the RM (accuracy, '
              'preference log-likelihood) and DPO\'s implicit reward at beta 0.1 (the same):', '',
              '| task | N | RM accuracy | RM log-lik | DPO accuracy | DPO log-lik | seeds |', '|---|---|---|---|---|---|---|']
        for (task, n), v in sorted(ver.items(), key=lambda kv: (TASKS.index(kv[0][0]), kv[0][1])):
            cell = lambda k, i: f"{statistics.mean(x[i] for x in v[k].values()):.3f}" if k in v else '-'  # noqa: E731
            L.append(f"| {task} | {n} | {cell('rm', 0)} | {cell('rm', 1)} | {cell('dpo', 0)} | {cell('dpo', 1)} | "
                     f"{max(len(x) for x in v.values())} |")
    return '\n'.join(L)


def de2_reading_md(rows):
    """The paper's pattern (a multiplier well above 1 on sentiment, about 1 on short and overlap) read off RLOO's
    multipliers: per budget and task, the N where the bootstrap interval lies above 1 (DPO needs more pairs than RM +
    RL had), below 1, or holds 1. The pattern appears at a budget when sentiment is above 1 at most of its N and
    short and overlap hold 1 at most of theirs; a rule fixed before the last seed's numbers existed."""
    L = []
    for budget in DE2.BUDGETS:
        points = de2_points(rows, budget)
        where, n_seeds = {}, set()
        for task in TASKS:
            t = de_table(points, task, pairs=(('rloo', 'dpo'),))
            for n in DE2.NS[task]:
                m = t.get(f'rloo/dpo@{n}')
                if m is None:
                    continue
                n_seeds.add(len(m['seeds']))
                lo, hi = m['ci']
                where.setdefault(task, {}).setdefault('above 1' if lo > 1 else 'below 1' if hi < 1 else 'holds 1', []).append(n)
        if n_seeds != {len(SEEDS)} or len(where) < len(TASKS):
            return f'The reading waits for every task and N to have all {len(SEEDS)} seeds.'
        most = lambda task, k: 2 * len(where[task].get(k, [])) > len(DE2.NS[task])  # noqa: E731
        appears = most('sentiment', 'above 1') and most('short', 'holds 1') and most('overlap', 'holds 1')
        L.append(f"Within {budget} nats, RLOO's multiplier interval, per task: " + '; '.join(
            f"{task}: " + ', '.join(f"{k} at N = {', '.join(map(str, ns))}" for k, ns in where[task].items())
            for task in TASKS) + f". The paper's pattern {'appears' if appears else 'does not appear'} at this budget.")
    return '\n\n'.join(L)


def de2_summary(rows, n):
    """The second pass at one N in summarise's shape, {task: {method: {budget: {seed: test pick}}}}: its val-chosen
    picks per budget, so paired() and the verdict rows read it like any sweep."""
    points = {b: de2_points(rows, b) for b in DE2.BUDGETS}
    return {t: {m: {b: points[b][t][m][n] for b in DE2.BUDGETS if n in points[b].get(t, {}).get(m, {})}
                for m in ('rloo', 'dpo')} for t in TASKS if n in DE2.NS[t]}
