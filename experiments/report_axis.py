"""
The answer across the KL axis, read from experiments/frontier_v3.py's records alone (no checkpoint is read):

  python experiments/report_axis.py     # prints the markdown; experiments/report.py puts it in REPORT and README

Per task, method and budget (2 ... 30 nats): the test gold of the checkpoint the val choice picks, mean ± sd over
the seeds whose block is complete, with its KL; RLOO - DPO and best-of-N - DPO per budget, paired by seed, with a
95% t-interval, the seeds ahead and the difference over the room (the better one's gain over SFT); each method's
ceiling (its pick at 30 nats: the best val gold at any KL up to 30) and that pick's KL; a sentence per task from
the pattern at each budget; and the band rule's count. Figures: results/frontier_v3_<task>.png (gold against KL,
every method, a band of one sd over seeds) and results/frontier_v3_gaps.png (RLOO - DPO against the budget).
"""
import glob
import math
import os
import statistics

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

import frontier_v3 as V  # noqa: E402
from frontier import ROOT, TASKS  # noqa: E402
import report_common as C  # noqa: E402
import report_costs as K  # noqa: E402

METHODS = {'dpo': 'DPO (offline)', 'rloo': 'RLOO (RM + RL)', 'best_of_n': 'best-of-N by the RM'}
COLORS = {'dpo': 'C0', 'rloo': 'C3', 'best_of_n': 'C1'}


def load():
    return C.load('frontier_v3')


def complete(rows, task):
    """The seeds whose block is scored through: best-of-N on both splits and both methods' test picks."""
    have = {(r['seed'], r['run'], r['split']) for r in rows if r['task'] == task}
    need = [('bon', 'val'), ('bon', 'test'), ('dpo_picks', 'test'), ('rloo_picks', 'test')]
    return [s for s in V.SEEDS[task] if all((s, run, split) in have for run, split in need)]  # in the sweep's order


def picks(rows, task, seed, method):
    """{budget: the test row of the checkpoint the val choice picks}. A trained method's candidates are every val
    snapshot of its runs and SFT (best-of-1); its test row is the one of the same checkpoint in its picks file.
    Best-of-N chooses its n on val likewise."""
    mine = [r for r in rows if r['task'] == task and r['seed'] == seed]
    bon = {s: [r for r in mine if r['run'] == 'bon' and r['split'] == s and r['method'] == 'best_of_n'] for s in ('val', 'test')}
    if method == 'best_of_n':
        cands, test = bon['val'], {r['best_of']: r for r in bon['test']}
        return {b: test[V.pick(cands, b)['best_of']] for b in V.BUDGETS}
    sft = next(r for r in bon['val'] if r['best_of'] == 1)
    cands = [r for r in mine if r['split'] == 'val' and r['method'] == method] + [sft]
    test = {r['path']: r for r in mine if r['run'] == f'{method}_picks' and r['method'] != 'human'}
    return {b: test[V.pick(cands, b)['path']] for b in V.BUDGETS}


def summary(rows, methods=METHODS):
    """{task: {method: {budget: {seed: {name, gold_reward, kl}}}, 'sft': {seed: test gold}}} over complete blocks
    (and, for a method beyond METHODS, an ablation's, the seeds whose picks it has scored too)."""
    keep, out = ('name', 'gold_reward', 'kl'), {}
    for t in TASKS:
        have = {(r['seed'], r['run']) for r in rows if r['task'] == t and r['split'] == 'test'}
        seeds = [s for s in complete(rows, t) if all((s, f'{m}_picks') in have for m in methods if m not in METHODS)]
        if seeds:
            out[t] = {m: {b: {s: {k: picks(rows, t, s, m)[b][k] for k in keep} for s in seeds} for b in V.BUDGETS}
                      for m in methods}
            out[t]['sft'] = {s: next(r['gold_reward'] for r in rows if r['task'] == t and r['seed'] == s and
                                     r['run'] == 'bon' and r['split'] == 'test' and r['best_of'] == 1) for s in seeds}
    return out


def interval(xs):
    """(mean, sd, low, high): a 95% t-interval over seeds (none for one seed)."""
    m, sd = C.mean_sd(xs)
    h = C.T975[len(xs) - 1] * sd / math.sqrt(len(xs)) if len(xs) > 1 else float('nan')
    return m, sd, m - h, m + h


def ceiling(summ, task, method):
    """{seed: (gold, kl)}: the pick at the largest budget, the best val gold at any KL up to it, on test."""
    return {s: (r['gold_reward'], r['kl']) for s, r in summ[task][method][max(V.BUDGETS)].items()}


def ceiling_md(summ, task, method):
    """'+0.563 ± 0.072 at 21.2 nats': the ceiling's test gold, mean ± sd over seeds, at its mean KL."""
    golds, kls = zip(*ceiling(summ, task, method).values())
    return f'{C.pm(golds)} at {statistics.mean(kls):.1f} nats'


def room(summ, task, a, b, budget):
    """{seed: (a - b) over the better one's gain above SFT} (report_common.room), where either gains."""
    out = {s: C.room(summ[task][a][budget][s]['gold_reward'], summ[task][b][budget][s]['gold_reward'], summ[task]['sft'][s])
           for s in C.paired(summ, task, a, b, budget)}
    return {s: x for s, x in out.items() if x is not None}


def sentence(gaps, a='RLOO', b='DPO'):
    """One plain sentence from the pattern at each budget, e.g. 'level from 2 to 8 nats; RLOO ahead from 10 to 30
    nats (by +0.22 to +0.30)'. gaps: {budget: {seed: a - b}}, budgets in order. No pattern from fewer than 3 seeds."""
    n = min(len(d) for d in gaps.values())
    if n < 3:
        return f'{n} seed{"s" if n > 1 else ""} so far: no pattern is read from fewer than 3'
    spans = []
    for budget, d in gaps.items():
        p = C.pattern(list(d.values()))
        if spans and spans[-1][0] == p:
            spans[-1][1].append(budget)
            spans[-1][2].append(statistics.mean(d.values()))
        else:
            spans.append((p, [budget], [statistics.mean(d.values())]))
    words = {'gap': f'{a} ahead', 'reverse gap': f'{b} ahead', 'level': 'level'}
    parts = []
    for p, budgets, means in spans:
        where = f'at {budgets[0]} nats' if len(budgets) == 1 else f'from {budgets[0]} to {budgets[-1]} nats'
        by = f'{min(means):+.2f}' if len(means) == 1 else f'{min(means):+.2f} to {max(means):+.2f}'
        parts.append(f'{words[p]} {where} ({a} - {b} {by})')
    return '; '.join(parts)


def reading(summ, task, a='rloo', b='dpo', names=('RLOO', 'DPO')):
    """The sentence (above) for a - b on a task at every budget, paired by seed."""
    return sentence({budget: C.paired(summ, task, a, b, budget) for budget in V.BUDGETS}, *names)


def progress(rows):
    """'3 of 11 blocks complete': the sweep's (task, seed) blocks scored through."""
    return f"{sum(len(complete(rows, t)) for t in TASKS)} of {sum(map(len, V.SEEDS.values()))} blocks complete"


def band_check(rows):
    """{(task, seed, method): the thin bands} of every complete block: the band rule, counted from the val records."""
    out = {}
    for t in TASKS:
        for s in complete(rows, t):
            for m in ('dpo', 'rloo'):
                kls = [r['kl'] for r in rows if r['task'] == t and r['seed'] == s and r['split'] == 'val' and r['method'] == m]
                out[(t, s, m)] = V.thin_bands(kls)
    return out


def ci_md(xs, ahead=True):
    _, _, lo, hi = interval(xs)
    ci = f' [{lo:+.3f}, {hi:+.3f}]' if len(xs) > 1 else ''
    return C.pm(xs) + ci + (f' ({sum(x > 0 for x in xs)}/{len(xs)})' if ahead else '')


def gold_md(cells):
    """'gold ± sd (KL)' of one method at one budget."""
    golds, kls = [c['gold_reward'] for c in cells.values()], [c['kl'] for c in cells.values()]
    return f'{C.pm(golds)} ({statistics.mean(kls):.1f})'


def task_md(summ, task):
    """The budget table of one task, its ceilings and its sentence."""
    n = len(summ[task]['sft'])
    head = (f'**{task}** ({n} seed{"s" if n > 1 else ""}; test gold of the val-chosen checkpoint, mean ± sd over seeds '
            f'(its mean KL); differences paired by seed: mean ± sd [95% t-interval] (seeds ahead); over the room: the '
            "difference over the better method's gain above SFT)\n\n"
            '| budget (nats) | ' + ' | '.join(METHODS.values()) + ' | RLOO - DPO | over the room | best-of-N - DPO |\n'
            '|---|' + '---|' * (len(METHODS) + 3) + '\n')
    lines = []
    for b in V.BUDGETS:
        rel = list(room(summ, task, 'rloo', 'dpo', b).values())
        lines.append(f'| {b} | ' + ' | '.join(gold_md(summ[task][m][b]) for m in METHODS) +
                     f" | {ci_md(list(C.paired(summ, task, 'rloo', 'dpo', b).values()))} | "
                     f"{f'{statistics.mean(rel):+.2f}' if rel else '-'} | "
                     f"{ci_md(list(C.paired(summ, task, 'best_of_n', 'dpo', b).values()))} |")
    ceil = '; '.join(f'{METHODS[m]} {ceiling_md(summ, task, m)}' for m in METHODS)
    words = reading(summ, task)
    return head + '\n'.join(lines) + f'\n\nCeilings (the pick at {max(V.BUDGETS)} nats, mean over seeds): {ceil}.\n\n' \
        f'In words: {words}.\n'


def plot_task(summ, task, file='frontier_v3_{task}.png', res=os.path.join(ROOT, 'results'), methods=METHODS):
    """Gold against KL on the test prompts: each method's picks over the budgets (mean KL, mean gold) with a band of
    one sd of gold over seeds; SFT at the origin."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (m, label) in enumerate(methods.items()):
        pts = [(statistics.mean(c['kl'] for c in summ[task][m][b].values()),
                [c['gold_reward'] for c in summ[task][m][b].values()]) for b in V.BUDGETS]
        kls = [k for k, _ in pts]
        mean = [statistics.mean(g) for _, g in pts]
        sd = [statistics.stdev(g) if len(g) > 1 else 0.0 for _, g in pts]
        color = COLORS.get(m, f'C{i + 4}')  # an ablation's method too
        ax.plot(kls, mean, 'o-', color=color, label=label, ms=3)
        ax.fill_between(kls, [a - b for a, b in zip(mean, sd)], [a + b for a, b in zip(mean, sd)], color=color, alpha=0.2)
    ax.axhline(statistics.mean(summ[task]['sft'].values()), color='gray', lw=0.8, ls=':', label='SFT')
    ax.set(xlabel='KL to SFT of the val-chosen checkpoint (nats per completion, test)', ylabel='gold reward (test)',
           title=f'{task}: each budget 2-30 nats, {len(summ[task]["sft"])} seed{"s" if len(summ[task]["sft"]) > 1 else ""}')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(res, file.format(task=task)), dpi=110)
    plt.close(fig)


def plot_gaps(summ, file='frontier_v3_gaps.png', res=os.path.join(ROOT, 'results')):
    """RLOO - DPO against the budget, one line per task, its 95% t-interval shaded."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, task in enumerate(summ):
        stats = [interval(list(C.paired(summ, task, 'rloo', 'dpo', b).values())) for b in V.BUDGETS]
        ax.plot(V.BUDGETS, [m for m, *_ in stats], 'o-', color=f'C{i}', label=f'{task} ({len(summ[task]["sft"])} seeds)', ms=3)
        if len(summ[task]['sft']) > 1:
            ax.fill_between(V.BUDGETS, [lo for *_, lo, _ in stats], [hi for *_, hi in stats], color=f'C{i}', alpha=0.15)
    ax.axhline(0, color='gray', lw=0.8)
    ax.set(xlabel='KL budget (nats per completion)', ylabel='RLOO - DPO, test gold (paired by seed)',
           title='the answer across the KL axis')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(res, file), dpi=110)
    plt.close(fig)


def axis_md(rows):
    """The whole reading: per task its table, ceilings and sentence, then the band rule's count."""
    summ = summary(rows)
    if not summ:
        return 'No block of experiments/frontier_v3.py is complete yet.\n'
    for t in summ:
        plot_task(summ, t)
    plot_gaps(summ)
    bands = band_check(rows)
    held = sum(not thin for thin in bands.values())
    thin = '; '.join(f'{t} seed {s} {m}: {", ".join(f"[{b}, {b + V.BAND})" for b in bands_)}'
                     for (t, s, m), bands_ in bands.items() if bands_)
    return ''.join(f'![frontier_v3 {t}](results/frontier_v3_{t}.png)\n' for t in summ) + \
        '![RLOO - DPO against the budget](results/frontier_v3_gaps.png)\n\n' + \
        '\n'.join(task_md(summ, t) for t in summ) + \
        f'\nThe band rule (2 val snapshots in every 2-nat band up to the highest KL reached, at most 30) holds for ' \
        f'{held} of {len(bands)} (task, seed, method)' + (f'; thin: {thin}.' if thin else '.') + '\n'


def last_snapshot(rows, seed, run, task='short'):
    """The val row of a run's last snapshot, or None."""
    return max((r for r in rows if (r['task'], r['seed'], r['split'], r['run']) == (task, seed, 'val', run)),
               key=lambda r: r['step'] or -1, default=None)


def short_md(rows, beta='0.03'):
    """What RLOO converges to on `short`, per seed, from a sweep's val records: its last snapshot at the lowest
    beta (the top words beyond SFT's, in extra uses per 100 completions, with sample completions and their gold),
    beside DPO's at the same beta and what best-of-64 by the RM writes. Read before any new `short` number."""
    lines = ['| seed | RLOO: top words (gold, KL) | its completions (gold) | DPO: top words (gold, KL) | '
             'best-of-64 by the RM: top words |', '|---|---|---|---|---|']
    for seed in [s for s in V.SEEDS['short'] if any(r['task'] == 'short' and r['seed'] == s for r in rows)]:
        mine = [r for r in rows if r['task'] == 'short' and r['seed'] == seed and r['split'] == 'val']
        last = {m: last_snapshot(rows, seed, f'{m}_b{beta}') for m in ('rloo', 'dpo')}
        bo64 = next((r for r in mine if r['run'] == 'bon' and r['best_of'] == 64), None)
        if not all(last.values()) or not bo64:
            continue

        def words(r, k=3):
            return ', '.join(f'"{w}" {v:+.0f}' for w, v in r['top_words'][:k])
        said = '; '.join(f"`{e['completion'].strip() or repr(e['completion'])}` {e['gold']:.2f}"
                         for e in last['rloo']['examples'][:3])
        lines.append(f"| {seed} | {words(last['rloo'])} ({last['rloo']['gold_reward']:+.2f}, {last['rloo']['kl']:.1f}) | "
                     f"{said} | {words(last['dpo'])} ({last['dpo']['gold_reward']:+.2f}, {last['dpo']['kl']:.1f}) | "
                     f"{words(bo64)} |")
    return '\n'.join(lines) + '\n'


def code(text):
    """A completion as a code span in a table cell: pipes escaped, line breaks shown, a backtick inside fenced by two."""
    text = text.replace('|', '\\|').replace('\n', ' ⏎ ').replace('\t', ' ').strip() or ' '
    return f'`` {text} ``' if '`' in text else f'`{text}`'


def short_picks_md(rows, budget=max(V.BUDGETS)):
    """What this sweep's picks write on `short` at a budget, per complete seed, from their test records: each
    trained method's top words beyond SFT's (extra uses per 100 completions), its test gold and KL, and a
    completion."""
    lines = ['| seed | RLOO: top words (gold, KL) | a completion | DPO: top words (gold, KL) | a completion |',
             '|---|---|---|---|---|']
    for seed in complete(rows, 'short'):
        cells = []
        for m in ('rloo', 'dpo'):
            r = picks(rows, 'short', seed, m)[budget]
            top = ', '.join(f'"{w}" {v:+.0f}' for w, v in r['top_words'][:3] if v >= 1)
            cells += [f"{top} ({r['gold_reward']:+.2f}, {r['kl']:.1f})", code(r['examples'][0]['completion'])]
        lines.append(f'| {seed} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n' if len(lines) > 2 else ''


HEADLINE = (6, 10, 15, 20)  # the budgets the front page shows; REPORT shows all of them


def headline_md(summ, rows):
    """README's headline: per task, RLOO - DPO at a few budgets with the seeds ahead, each method's ceiling, and a
    sentence per task from the pattern at every budget; a task without a complete block says so."""
    L = ['| task (seeds) | ' + ' | '.join(f'RLOO - DPO within {b} nats' for b in HEADLINE) +
         ' | ' + ' | '.join(f'ceiling: {m}' for m in METHODS.values()) + ' |', '|---|' + '---|' * (len(HEADLINE) + len(METHODS))]
    words = []
    for t in TASKS:
        if t not in summ:
            words.append(f'- **{t}**: no block of the sweep is complete yet.')
            continue
        cells = [ci_md(list(C.paired(summ, t, 'rloo', 'dpo', b).values())) for b in HEADLINE]
        ceil = [ceiling_md(summ, t, m) for m in METHODS]
        L.append(f"| {t} ({len(summ[t]['sft'])}) | " + ' | '.join(cells + ceil) + ' |')
        words.append(f"- **{t}**: {reading(summ, t)}.")
    prompts = {s: next(r['n_completions'] for r in rows if r['method'] == 'human' and r['split'] == s) for s in ('val', 'test')}
    return '\n'.join(L) + '\n\n' + '\n'.join(words) + (
        f"\n\nEach cell: the test gold (all {prompts['test']} test prompts; 2 samples each for DPO and RLOO, best-of-N's "
        f"pick among N) of each method's checkpoint chosen on the {prompts['val']} val prompts within the budget, "
        'RLOO - DPO paired by seed: mean ± sd [95% t-interval] (seeds ahead); a ceiling is the pick at 30 nats, mean ± sd '
        'at its mean KL. Every budget from 2 to 30 nats and the figures: '
        '[REPORT.md](REPORT.md).\n')


def short_line(rows, beta='0.03'):
    """README's line on `short`: per seed, what RLOO's last snapshot at the lowest beta of a sweep writes."""
    said = []
    for seed in V.SEEDS['short']:
        last = last_snapshot(rows, seed, f'rloo_b{beta}')
        if last:
            (word, n), ex = last['top_words'][0], last['examples'][0]['completion'].strip()
            said.append(f'seed {seed} `{ex}` ("{word}" {n:+.0f} uses per 100 completions beyond SFT\'s, gold '
                        f"{last['gold_reward']:+.2f}, {last['kl']:.0f} nats)")
    return '; '.join(said)


def own_words_md(rows, task='sentiment', budget=10):
    """What the policies write: for the first three test prompts (the records keep them), the completion of SFT and
    of each method's val-chosen checkpoint within the budget, with its gold reward, on the first complete seed."""
    seeds = complete(rows, task)
    if not seeds:
        return ''
    seed = seeds[0]
    sft = next(r for r in rows if r['task'] == task and r['seed'] == seed and r['run'] == 'bon' and
               r['split'] == 'test' and r['best_of'] == 1)
    cols = {'SFT': sft, **{METHODS[m]: picks(rows, task, seed, m)[budget] for m in METHODS}}

    def cell(e):
        return f"{code(e['completion'])} ({e['gold']:+.2f})"
    L = ['| prompt | ' + ' | '.join(f'{name} ({r["kl"]:.1f} nats)' for name, r in cols.items()) + ' |',
         '|---|' + '---|' * len(cols)]
    for i, e in enumerate(sft['examples'][:3]):
        L.append(f"| {code(e['prompt'])} | " + ' | '.join(cell(r['examples'][i]) for r in cols.values()) + ' |')
    return (f'{task}, seed {seed}, each checkpoint chosen on val within {budget} nats (its test KL in the header); '
            'gold reward of each completion in brackets, ⏎ a line break:\n\n' + '\n'.join(L) + '\n')


def ablations_md(rows):
    """Each ablation over this sweep (experiments/frontier_v3.py --ablate: results/ablations_v3/NAME/), read as the
    methods are: per task and budget its test gold, its difference from RLOO and from DPO paired by seed, and its
    ceiling, on the seeds it has scored; its figure beside its records."""
    out = []
    for d in sorted(glob.glob(os.path.join(C.RES, 'ablations_v3', '*', ''))):
        name = os.path.basename(os.path.dirname(d))
        mine = C.load(f'ablations_v3/{name}')
        flags = sorted({r['setting'] for r in mine if r['method'] == name})
        methods = {**METHODS, name: f"{name} ({', '.join(flags)})"}
        summ = summary(rows + mine, methods)
        if not summ:
            out.append(f'### {name}\n\nNo seed of `{name}` is scored through its test picks yet.\n')
            continue
        for t in summ:
            plot_task(summ, t, f'{name}_{{task}}.png', os.path.join(C.RES, 'ablations_v3', name), methods)
        out.append(f"### {name} (`--ablate` {', '.join(f'`{f}`' for f in flags)})\n\n" + '\n'.join(
            f'![{name} {t}](results/ablations_v3/{name}/{name}_{t}.png)\n\n' + ablation_task_md(summ, t, name) for t in summ)
            + cost_md(name))
    return '\n'.join(out)


def cost_md(name):
    """What an ablation spent: its timings.tsv, less the jobs of the sweeps it reuses (counted under those)."""
    own = K.own_timings(f'ablations_v3/{name}')
    hours = sum(x for _, x in own if x is not None) / 3600
    return (f'\nCost: {hours:.2f} one-thread CPU-hours over its {len(own)} jobs of its own '
            f'(`results/ablations_v3/{name}/timings.tsv`, less the jobs it reuses from the sweep).\n' if own else '')


def ablation_task_md(summ, task, name):
    n = len(summ[task]['sft'])
    L = [f'**{task}** ({n} seed{"s" if n > 1 else ""}; as in the table above: test gold of the val-chosen checkpoint '
         '(its mean KL); differences paired by seed with a 95% t-interval and the seeds ahead)\n',
         f'| budget (nats) | {name} | {name} - RLOO | {name} - DPO |', '|---|---|---|---|']
    for b in V.BUDGETS:
        L.append(f'| {b} | {gold_md(summ[task][name][b])} | '
                 f"{ci_md(list(C.paired(summ, task, name, 'rloo', b).values()))} | {ci_md(list(C.paired(summ, task, name, 'dpo', b).values()))} |")
    L.append(f'\nCeiling (the pick at {max(V.BUDGETS)} nats, mean over seeds): {ceiling_md(summ, task, name)}. '
             f'In words, {name} - RLOO: '
             f"{reading(summ, task, name, 'rloo', (name, 'RLOO'))}; {name} - DPO: "
             f"{reading(summ, task, name, 'dpo', (name, 'DPO'))}.")
    return '\n'.join(L) + '\n'


if __name__ == '__main__':
    print(axis_md(load()))
    print(ablations_md(load()))
