"""
Data efficiency, first pass (experiments/data_efficiency.py): gold reward at the budget against the number of
pairs, and how many more pairs DPO needs.
"""
import glob
import itertools
import json
import math
import os
import random
import re
import statistics

import data_efficiency as DE
import report_common as C
from report_common import COLORS, SEEDS, TASKS, mean_sd, plot_seeds, plt, save_fig

DE_METHODS = {'dpo': 'DPO (offline)', 'odpo_sft': 'online DPO, SFT sampler', 'rloo': 'RLOO (RM + RL)',
              'best_of_n': 'best-of-N (RM)', 'best_of_n_dpo': "best-of-N (DPO's implicit reward)"}
RERANKERS = {'best_of_n': 'rm_n', 'best_of_n_dpo': 'dpo_n'}  # best-of-N by each N's RM, or by each N's DPO policy
MULTIPLIERS = (('rloo', 'dpo'), ('odpo_sft', 'dpo'))  # (reached by, needed by): how many more pairs the second needs
PAPER_DE = {'sentiment': 'large: RM + RL needs far fewer pairs', 'short': 'about 1 (no gap)', 'overlap': 'about 1 (no gap)'}


def de_points(rows):
    """{task: {method: {N: {seed: test row}}}}: for trained methods the one test row the sweep scored (its
    val-chosen checkpoint); for best-of-N the val-best n (SFT included) reranked by N's RM or N's DPO policy, read
    from the test records."""
    out = {}
    for r in rows:
        if r['split'] == 'test' and r['method'] in DE_METHODS and r['method'] != 'best_of_n':
            out.setdefault(r['task'], {}).setdefault(r['method'], {}).setdefault(int(r['setting'][1:]), {})[r['seed']] = r
    for task, seed in sorted({(r['task'], r['seed']) for r in rows if r['method'] == 'best_of_n'}):
        bon = {s: [r for r in rows if r['task'] == task and r['seed'] == seed and r['split'] == s and
                   r['method'] == 'best_of_n'] for s in ('val', 'test')}
        if not bon['test']:
            continue
        for (method, prefix), n in itertools.product(RERANKERS.items(), DE.NS):
            test = bon_pick(bon, f'{prefix}{n}', DE.BUDGET)
            if test:
                out.setdefault(task, {}).setdefault(method, {}).setdefault(n, {})[seed] = test
    return out


def bon_pick(bon, reranker, budget):
    """Best-of-n by one reranker (its checkpoint's name): the val-best n within the budget, SFT (best-of-1)
    included; its test row, or None if the reranker was not used. bon: {'val': rows, 'test': rows} of one
    (task, seed)."""
    sft = next(r for r in bon['val'] if r['best_of'] == 1)
    cands = [r for r in bon['val'] if os.path.basename(r['rm'] or '') == reranker]
    if not cands:
        return None
    best = DE.choose(cands, sft, budget)
    return next(r for r in bon['test'] if r['name'] == best['name'] and (best is sft or r['rm'] == best['rm']))


def pairs_needed(ns, values, target):
    """The N' at which a curve (values at ns, increasing ns) first reaches target, linear in log N between points.
    Returns (N', sign): sign '<' if the first point already reaches it, '>' if the curve never does (N' = max)."""
    if values[0] >= target:
        return ns[0], '<'
    for (n0, v0), (n1, v1) in zip(zip(ns, values), zip(ns[1:], values[1:])):
        if v0 < target <= v1:
            return math.exp(math.log(n0) + (target - v0) / (v1 - v0) * (math.log(n1) - math.log(n0))), ''
    return ns[-1], '>'


def multiplier(curves, reached_by, needed_by, n):
    """N'/N: the pairs needed_by's seed-mean curve needs to reach reached_by's seed-mean value at N."""
    ns = sorted(curves[needed_by])  # whichever N the sweep measured (the first pass's, or the second's)
    mean = lambda c, m: statistics.mean(c[m].values())  # noqa: E731
    nn, sign = pairs_needed(ns, [mean(curves[needed_by], m) for m in ns], mean(curves[reached_by], n))
    return nn / n, sign


def de_table(points, task, n_boot=2000, pairs=MULTIPLIERS):
    """The multiplier at each N where both curves are complete, with a 95% bootstrap interval over seeds (seeds
    resampled with replacement; with 3 seeds there are only 10 distinct resamples, so the interval is coarse)."""
    c = points.get(task, {})
    out = {}
    for a, b in pairs:
        if a not in c or b not in c:
            continue
        seeds = sorted(set.intersection(*(set(c[m][n]) for m in (a, b) for n in c[m])))
        full = {m: {n: {s: c[m][n][s]['gold_reward'] for s in seeds} for n in sorted(c[m])} for m in (a, b)}
        if not seeds or len(full[b]) < 2:
            continue
        rng = random.Random(0)
        for n in full[a]:
            point = multiplier(full, a, b, n)
            boot = []
            for _ in range(n_boot):
                pick = [rng.choice(seeds) for _ in seeds]
                curves = {m: {k: {i: v[s] for i, s in enumerate(pick)} for k, v in full[m].items()} for m in (a, b)}
                x, sign = multiplier(curves, a, b, n)
                boot.append(math.inf if sign == '>' else 0.0 if sign == '<' else x)
            boot.sort()
            out[f'{a}/{b}@{n}'] = {'multiplier': point[0], 'sign': point[1], 'seeds': seeds,
                                   'ci': (boot[int(0.025 * n_boot)], boot[int(0.975 * n_boot) - 1])}
    return out


def de_plot(points, task, ns=DE.NS, budget=DE.BUDGET, methods=DE_METHODS, file='data_efficiency_{task}.png'):
    c = points.get(task)
    if not c:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, label in methods.items():
        if method not in c:
            continue
        plot_seeds(ax, {n: {s: r['gold_reward'] for s, r in v.items()} for n, v in c[method].items()},
                   COLORS[method], label)
    ax.set_xscale('log')
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel('informative (untied) preference pairs N')
    ax.set_ylabel(f'test gold reward, val-chosen within KL <= {budget} nats')
    seeds = sorted({s for m in c.values() for n in m.values() for s in n}, key=SEEDS.index)
    save_fig(fig, ax, file.format(task=task, budget=budget), task, seeds)
    return True


def de_markdown(points, tables):
    L = []
    for task in TASKS:
        c = points.get(task)
        if not c:
            continue
        L += [f"**{task}**: test gold reward of the val-chosen checkpoint within KL <= {DE.BUDGET} nats, mean ± sd "
              "over seeds (how many seeds), against N:", '', '| method | ' + ' | '.join(f'N = {n}' for n in DE.NS) + ' |',
              '|---' * (len(DE.NS) + 1) + '|']
        for method, label in DE_METHODS.items():
            cells = []
            for n in DE.NS:
                v = [r['gold_reward'] for r in c.get(method, {}).get(n, {}).values()]
                cells.append('-' if not v else f'{mean_sd(v)[0]:+.3f}' + (f' ± {mean_sd(v)[1]:.3f}' if len(v) > 1 else '')
                             + f' ({len(v)})')
            L.append(f'| {label} | ' + ' | '.join(cells) + ' |')
        L.append('')
        t = tables.get(task, {})
        if t:
            L += [f"Pairs multiplier on {task} (paper: {PAPER_DE[task]}): N'/N, where DPO's seed-mean curve reaches "
                  "the other method's seed-mean value at N (linear in log N between measured points), with a 95% "
                  "bootstrap interval over seeds:", '', '| reached by | ' + ' | '.join(f'N = {n}' for n in DE.NS) + ' |',
                  '|---' * (len(DE.NS) + 1) + '|']
            for a, b in MULTIPLIERS:
                cells = []
                for n in DE.NS:
                    m = t.get(f'{a}/{b}@{n}')
                    if m is None:
                        cells.append('-')
                        continue
                    cells.append(f"{mult_cell(m, n)} ({len(m['seeds'])} seeds)")
                L.append(f'| {DE_METHODS[a]} | ' + ' | '.join(cells) + ' |')
            L.append('')
    return '\n'.join(L)


def de_fallbacks(rows, budget=DE.BUDGET):
    """{task: {method: {N: [why, ...]}}}, one entry per seed whose trained run the budget could not use: 'over' when
    every snapshot was already past the budget on val (so SFT was chosen), 'flat' when no snapshot got past a
    third of it (the run barely moved from SFT)."""
    val = [r for r in rows if r['split'] == 'val' and r['method'] != 'human']
    sft = {(r['task'], r['seed']): r for r in val if r['method'] == 'best_of_n' and r['best_of'] == 1}
    runs = {}
    for r in val:
        if r['method'] in DE_METHODS and r['method'] != 'best_of_n':
            runs.setdefault((r['task'], r['method'], int(r['setting'][1:]), r['seed']), []).append(r)
    out = {}
    for (task, method, n, seed), rs in runs.items():
        if (task, seed) not in sft:  # a sweep in progress: no best-of-N records yet, so no SFT point
            continue
        kls = [r['kl'] for r in rs]
        if min(kls) > budget and DE.choose(rs, sft[task, seed], budget) is sft[task, seed]:
            why = 'over'
        elif max(kls) < budget / 3:
            why = 'flat'
        else:
            continue
        out.setdefault(task, {}).setdefault(method, {}).setdefault(n, []).append(why)
    return out


def de_rm_acc():
    """{(task, verifier, N): {seed: (held-out accuracy, step)}}: each N's RM at the step it kept (its best val
    preference log-likelihood, --keep_best) and each N's DPO implicit reward at the end of training."""
    acc = {}
    for path in glob.glob(os.path.join(C.RES, 'data_efficiency', 'logs', 'seed*_*_*_n*.jsonl')):
        m = re.fullmatch(r'seed(\d+)_([a-z]+)_(rm|dpo)_n(\d+)\.jsonl', os.path.basename(path))
        if not m:  # RLOO's and online DPO's logs
            continue
        seed, task, kind, n = m.groups()
        ev = [r for r in map(json.loads, open(path)) if 'val_pref_acc' in r]
        r = max(ev, key=lambda r: r['val_pref_loglik']) if kind == 'rm' else ev[-1]
        acc.setdefault((task, kind, int(n)), {})[int(seed)] = (r['val_pref_acc'], r['step'])
    return acc


def de_diagnosis_md(rows):
    """Where the budget's choice could not use a run, and how well each N's verifier ranks held-out pairs."""
    fb, acc = de_fallbacks(rows), de_rm_acc()
    L = [f'Runs the {DE.BUDGET}-nat budget could not use, per seed: **over** = every snapshot already past the budget on '
         f'val (so SFT was chosen), **flat** = no snapshot past {DE.BUDGET / 3:.1f} nats:', '',
         '| task | method | ' + ' | '.join(f'N = {n}' for n in DE.NS) + ' |', '|---|---' + '|---' * len(DE.NS) + '|']
    for task in TASKS:
        for method, by_n in fb.get(task, {}).items():
            cells = [', '.join(f'{w.count(k)} {k}' for k in ('over', 'flat') if k in w) for w in
                     (by_n.get(n, []) for n in DE.NS)]
            L.append(f'| {task} | {DE_METHODS[method]} | ' + ' | '.join(c or '' for c in cells) + ' |')
    L += ['', 'Held-out preference accuracy (the 500 untied val pairs) of each N\'s verifiers, mean ± sd over seeds: the '
          "RM at the step it kept (best val log-likelihood; the steps kept, per seed, after @) and DPO's implicit "
          'reward at the end of training:', '', '| task | verifier | ' + ' | '.join(f'N = {n}' for n in DE.NS) + ' |',
          '|---|---' + '|---' * len(DE.NS) + '|']
    for task in TASKS:
        for kind, label in (('rm', 'RM'), ('dpo', "DPO's implicit reward")):
            cells = []
            for n in DE.NS:
                v = acc.get((task, kind, n), {})
                seeds = sorted(v, key=SEEDS.index)
                m, sd = mean_sd([v[s][0] for s in seeds]) if v else (None, None)
                cells.append('-' if not v else f'{m:.3f} ± {sd:.3f}' +
                             (' @' + '/'.join(str(v[s][1]) for s in seeds) if kind == 'rm' else ''))
            if any(c != '-' for c in cells):
                L.append(f'| {task} | {label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(L)


def mult_cell(m, n):
    """A pairs multiplier as the data-efficiency table writes it: the value (or '> N'/N off the measured range) and
    its bootstrap interval."""
    lo, hi = (('> max' if math.isinf(x) else '< min' if x == 0 else f'{x:.2g}') for x in m['ci'])
    # off the measured range: the largest (smallest) N that DPO has, over N
    val = f"{m['sign']} {round(m['multiplier'] * n)}/{n}" if m['sign'] else f"{m['multiplier']:.2g}"
    return f'{val} [{lo}, {hi}]'
