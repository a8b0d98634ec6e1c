"""
The data-efficiency curves' shared parts (experiments/report_data_efficiency_v2.py draws them; report_facts quotes
them): best-of-n's val-chosen pick per reranker, the pairs multiplier with its bootstrap interval over seeds, the
figure and the multiplier's cell.
"""
import math
import os
import random
import statistics

import data_efficiency as DE
from report_common import COLORS, SEEDS, plot_seeds, plt, save_fig


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
    ns = sorted(curves[needed_by])  # whichever N the sweep measured
    mean = lambda c, m: statistics.mean(c[m].values())  # noqa: E731
    nn, sign = pairs_needed(ns, [mean(curves[needed_by], m) for m in ns], mean(curves[reached_by], n))
    return nn / n, sign


def de_table(points, task, pairs, n_boot=2000):
    """The multiplier of each pair (reached by, needed by) at each N where both curves are complete, as
    {'<a>/<b>@<N>': ...}, with a 95% bootstrap interval over seeds (seeds resampled with replacement; with 3 seeds
    there are only 10 distinct resamples, so the interval is coarse)."""
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


def de_plot(points, task, ns, budget, methods, file):
    """Gold reward against N, a curve per method over seeds; file: a name with {task} and {budget}."""
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


def mult_cell(m, n):
    """A pairs multiplier as the data-efficiency table writes it: the value (or '> N'/N off the measured range) and
    its bootstrap interval."""
    lo, hi = (('> max' if math.isinf(x) else '< min' if x == 0 else f'{x:.2g}') for x in m['ci'])
    # off the measured range: the largest (smallest) N that DPO has, over N
    val = f"{m['sign']} {round(m['multiplier'] * n)}/{n}" if m['sign'] else f"{m['multiplier']:.2g}"
    return f'{val} [{lo}, {hi}]'
