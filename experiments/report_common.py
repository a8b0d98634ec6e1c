"""
What every part of the report shares: the records (load), the frontier's protocol (choose, summarise), its figure
and tables, the paired statistics over seeds, and the template's filling. Every report module reads results/ as
report_common.RES (and the repository as report_common.ROOT), so one setting moves them all.
"""
import glob
import json
import math
import os
import re
import statistics
import textwrap
import zlib

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from frontier import ROOT, SEEDS, TASKS  # noqa: E402  (the sweep's own seeds and tasks)

RES = os.path.join(ROOT, 'results')
BUDGETS = (3, 10, 30)
METHODS = {'dpo': 'DPO (offline)', 'odpo_sft': 'online DPO, SFT sampler', 'odpo_dpo': 'online DPO, DPO sampler',
           'rloo': 'RLOO (RM + RL)', 'best_of_n': 'best-of-N (RM)'}
COLORS = {'dpo': 'C0', 'odpo_sft': 'C2', 'odpo_dpo': 'C4', 'rloo': 'C3', 'best_of_n': 'C1', 'rloo_local': 'C5',
          'best_of_n_dpo': 'C7', 'dpo_human': 'C8', 'dpo_e6': 'C9', 'dpo_e12': 'C6', 'rloo_small': 'navy', 'dpo_dense': 'skyblue',
          'dpo_own': 'teal'}
PAPER = {'sentiment': 'paper: RM + RL above offline DPO at every KL (verifying is simpler than generating)',
         'short': 'paper: no gap, curves level (two-token outputs, no horizon)',
         'overlap': 'paper: no gap, curves level (the verifier must know the answer)'}


def load(sweep='frontier'):
    rows = []
    for path in sorted(glob.glob(os.path.join(RES, sweep, '*.jsonl'))):
        rows += [json.loads(line) for line in open(path)]
    return rows


def sft_row(rows):
    """SFT itself: best-of-1, the first of the best-of-N samples (KL exactly 0)."""
    return next(r for r in rows if r['method'] == 'best_of_n' and r['best_of'] == 1)


def choose(rows, task, seed, method, budget):
    """The protocol: the val-best checkpoint of a method (SFT included) within the KL budget; its test row."""
    val = [r for r in rows if r['task'] == task and r['seed'] == seed and r['split'] == 'val']
    test = [r for r in rows if r['task'] == task and r['seed'] == seed and r['split'] == 'test']
    if not any(r['method'] == method for r in val) or not test:
        return None
    cands = [r for r in val if r['method'] == method] + [sft_row(val)]
    best = max((r for r in cands if r['kl'] <= budget), key=lambda r: r['gold_reward'])
    return next((r for r in test if r['run'] == best['run'] and r['name'] == best['name']), None)


def mean_sd(xs):
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def seeds_of(rows, task):
    return sorted({r['seed'] for r in rows if r['task'] == task and r['split'] == 'test'}, key=SEEDS.index)


def summarise(rows, methods=METHODS, budgets=BUDGETS):
    out = {}
    for task in TASKS:
        seeds = seeds_of(rows, task)
        for method in methods:
            for b in budgets:
                picks = {s: choose(rows, task, s, method, b) for s in seeds}
                picks = {s: p for s, p in picks.items() if p is not None}
                if picks:
                    out.setdefault(task, {}).setdefault(method, {})[b] = {
                        s: {k: p[k] for k in ('run', 'name', 'gold_reward', 'gold_reward_ci', 'kl', 'win_vs_human',
                                              'length', 'eos_rate', 'top_words', 'examples')}
                        for s, p in picks.items()}
    return out


def run_settings(run, method):
    """'dpo_lr0.0003_b0.1' of method 'dpo' reads 'lr 0.0003, beta 0.1'; a part it does not know stays as it is."""
    def part(p):
        for prefix, name in (('lr', 'lr '), ('b', 'beta ')):
            if p.startswith(prefix) and p[len(prefix):].replace('.', '', 1).replace('e-', '', 1).isdigit():
                return name + p[len(prefix):]
        return p
    return ', '.join(part(p) for p in run.removeprefix(f'{method}_').split('_'))


def with_new_methods(rows, methods=METHODS):
    """The registry's methods, then any other method the records hold (a run a fork added to a sweep), labelled by
    its own name: a method the registry lacks is drawn and tabled, not dropped."""
    return {**methods, **{m: m for m in sorted({r['method'] for r in rows} - set(methods) - {'human'})}}


def plot(rows, task, methods=METHODS, file='frontier'):
    test = [r for r in rows if r['task'] == task and r['split'] == 'test']
    if not test:
        return False
    seeds = seeds_of(rows, task)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for method, label in methods.items():
        runs = sorted({r['run'] for r in test if r['method'] == method})
        for k, run in enumerate(runs):
            curves = []
            for s in seeds:
                # a run's curve starts at its first snapshot: nothing was measured between SFT and it
                pts = [r for r in test if r['seed'] == s and r['run'] == run and r['method'] == method]
                pts = sorted(pts, key=lambda r: (r['best_of'] or 0, r['step'] or 0))
                curves.append([(r['kl'], r['gold_reward']) for r in pts])
                ax.plot(*zip(*curves[-1]), color=color(method), lw=0.6, alpha=0.35)
            n = min(len(c) for c in curves)  # the seed mean, point by point (the same snapshots in every seed)
            mean = [tuple(statistics.mean(c[i][j] for c in curves) for j in (0, 1)) for i in range(n)]
            ax.plot(*zip(*mean), color=color(method), lw=2.2, ls='-' if k == 0 else '--', marker='o', ms=3,
                    label=label if method not in COLORS else f"{label}" + (
                        f" ({run_settings(run, method)})" if method != 'best_of_n'
                        else ' (KL: the bound log N - (N-1)/N)'))
    sft = [sft_row([r for r in test if r['seed'] == s]) for s in seeds]
    ax.plot([0], [statistics.mean(r['gold_reward'] for r in sft)], 'k*', ms=12, label='SFT', zorder=5)
    human = next(r for r in test if r['method'] == 'human')
    ax.axhline(human['gold_reward'], color='k', ls=':', lw=1, label='human reference completion')
    ax.set_xscale('symlog', linthresh=1)
    ax.set_xlim(left=0)
    ax.set_xlabel('KL(pi || SFT), nats per completion (test prompts; symlog axis)')
    ax.set_ylabel('gold reward (test prompts)')
    save_fig(fig, ax, f'{file}_{task}.png', task, seeds)
    return True


def save_fig(fig, ax, file, task, seeds):
    ax.set_title(f"{task}: seeds {', '.join(map(str, seeds))} (thin: each seed, bold: seed mean)", fontsize=10)
    ax.legend(fontsize=7, loc='best')
    fig.tight_layout()
    fig.savefig(os.path.join(RES, file), dpi=120)
    plt.close(fig)


def markdown(rows, summ, methods=METHODS, paper=PAPER):
    L = []
    for task in TASKS:
        if task not in summ:
            continue
        seeds = seeds_of(rows, task)
        L += [f"**{task}** ({paper[task]}); test gold reward of the val-chosen checkpoint within each KL "
              f"budget, mean ± sd over seeds {', '.join(map(str, seeds))} (± only with two or more), and its mean test KL:", '',
              '| method | ' + ' | '.join(f'KL <= {b}' for b in BUDGETS) + ' |',
              '|---' * (len(BUDGETS) + 1) + '|']
        for method, label in methods.items():
            cells = []
            for b in BUDGETS:
                picks = summ[task].get(method, {}).get(b)
                if not picks:
                    cells.append('-')
                    continue
                m, sd = mean_sd([p['gold_reward'] for p in picks.values()])
                kl = statistics.mean(p['kl'] for p in picks.values())
                spread = f' ± {sd:.3f}' if len(picks) > 1 else ''
                cells.append(f'{m:+.3f}{spread} (KL {kl:.1f}' + (f', {len(picks)} of {len(seeds)} seeds)'
                                                               if len(picks) < len(seeds) else ')'))
            L.append(f'| {label} | ' + ' | '.join(cells) + ' |')
        L.append('')
    return '\n'.join(L)


def diffs_md(summ, pairs=(('rloo', 'dpo'), ('odpo_dpo', 'dpo'), ('odpo_sft', 'dpo'), ('best_of_n', 'rloo')),
             methods=METHODS):
    """Paired by seed: method A's chosen test gold minus method B's at the same budget."""
    L = ['| task | difference | ' + ' | '.join(f'KL <= {b}' for b in BUDGETS) + ' |', '|---|---|' + '---|' * len(BUDGETS)]
    for task in TASKS:
        for a, b in pairs:
            cells = [diff_cell(summ, task, a, b, bud) for bud in BUDGETS]
            if any(c != '-' for c in cells):
                L.append(f'| {task} | {methods[a]} - {methods[b]} | ' + ' | '.join(cells) + ' |')
    return ('Paired by seed, the difference in test gold reward between the chosen checkpoints of two methods '
            '(mean ± sd over seeds; how many seeds favour the first):\n\n' + '\n'.join(L))


def diff_cell(summ, task, a, b, budget):
    pa, pb = (summ.get(task, {}).get(m, {}).get(budget, {}) for m in (a, b))
    d = [pa[s]['gold_reward'] - pb[s]['gold_reward'] for s in pa if s in pb]
    if not d or all(pa[s]['name'] == pb[s]['name'] == 'sft+bo1' for s in pa if s in pb):
        return '-' if not d else 'both chose SFT'
    m, sd = mean_sd(d)
    return f'{m:+.3f}' + (f' ± {sd:.3f}' if len(d) > 1 else '') + f' ({sum(x > 0 for x in d)}/{len(d)} seeds > 0)'


def plot_seeds(ax, curve, color, label, **kw):
    """curve {x: {seed: y}}: a thin line per seed and a bold one for the seed mean."""
    xs = sorted(curve)
    for seed in sorted({s for v in curve.values() for s in v}):
        ax.plot(*zip(*[(x, curve[x][seed]) for x in xs if seed in curve[x]]), color=color, lw=0.6, alpha=0.35)
    ax.plot(xs, [statistics.mean(curve[x].values()) for x in xs], color=color, lw=2.2, marker='o', ms=4, label=label,
            **kw)


PALETTE = ('magenta', 'gold', 'lime', 'crimson', 'saddlebrown', 'indigo', 'darkkhaki', 'deeppink')


def color(method):
    """The registry's colour, or one of PALETTE (none of them the registry's) picked by the name itself."""
    return COLORS.get(method) or PALETTE[zlib.crc32(method.encode()) % len(PALETTE)]


def room(a, b, sft):
    """a - b over the better one's gain above SFT: a difference read against the room the task gives (sentiment's
    methods gain up to ~0.5 over SFT within 10 nats, overlap's ~0.05). None where neither gains."""
    gain = max(a, b) - sft
    return (a - b) / gain if gain > 0 else None


T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447}  # Student's t, 97.5% quantile, by degrees of freedom


def t_interval_md(xs):
    """mean [95% t-interval over seeds] (n/n of them > 0); one seed has no interval."""
    m, sd = mean_sd(xs)
    if len(xs) < 2:
        return f'{m:+.2f} (1 seed)'
    h = T975[len(xs) - 1] * sd / math.sqrt(len(xs))
    return f'{m:+.2f} [{m - h:+.2f}, {m + h:+.2f}] ({sum(x > 0 for x in xs)}/{len(xs)} > 0)'


def pattern(d):
    """'gap' if every seed's difference has the same sign and the mean exceeds the seed sd, else 'level'."""
    m, sd = mean_sd(d)
    return ('gap' if m > 0 else 'reverse gap') if len({x > 0 for x in d}) == 1 and abs(m) > sd else 'level'


def paired(summ, task, a, b, budget):
    """{seed: method a's chosen test gold - method b's}."""
    pa, pb = (summ.get(task, {}).get(m, {}).get(budget, {}) for m in (a, b))
    return {s: pa[s]['gold_reward'] - pb[s]['gold_reward'] for s in pa if s in pb}


def pm(xs):
    """'mean ± sd' of a list, to three places ('mean' alone for one value: one seed has no sd)."""
    m, sd = mean_sd(xs)
    return f'{m:+.3f} ± {sd:.3f}' if len(xs) > 1 else f'{m:+.3f}'


def diff_md(d):
    return f'{pm(d)} ({sum(x > 0 for x in d)}/{len(d)} > 0)'


def write_atomic(path, text):
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)


def fill(text, ctx):
    """{{name arg ...|spec}}: ctx[name] (called with the args if it is a function), formatted with spec; a pair
    (mean, sd) reads 'mean ± sd'."""
    def one(m):
        expr, _, spec = m.group(1).partition('|')
        name, *args = expr.split()
        v = ctx[name](*args) if callable(ctx[name]) else ctx[name]
        if isinstance(v, tuple):
            return f'{v[0]:{spec}} ± {v[1]:{spec.lstrip("+")}}'
        return format(v, spec) if spec else str(v)
    return re.sub(r'\{\{(.+?)\}\}', one, text)


def fill_markers(text, blocks):
    """Put blocks[NAME] between <!-- NAME:begin (made by experiments/report.py) --> and <!-- NAME:end -->, indented
    as the begin marker is (a block inside a list item stays in it); text without the markers is left as it is."""
    for name, md in blocks.items():
        begin, end = f'<!-- {name}:begin (made by experiments/report.py) -->', f'<!-- {name}:end -->'
        text = re.sub(r'(?m)^([ \t]*)' + re.escape(begin) + '.*?' + re.escape(end),
                      lambda m: f'{m[1]}{begin}\n{textwrap.indent(md, m[1])}\n{m[1]}{end}', text, flags=re.S)
    return text
