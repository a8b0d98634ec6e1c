"""
Every figure and table of the frontier and data-efficiency sweeps, from the records in results/ alone (no
checkpoint is read):

  python experiments/report.py

writes results/frontier_<task>.png (gold reward against KL to SFT on the test prompts), results/frontier_summary.json
(every number below, per seed), and the README section between the frontier markers: the KL-budget table, the
label statistics, the words each method's chosen policies lean on, and sample completions. From
results/data_efficiency/: results/data_efficiency_<task>.png (gold reward at the 10-nat budget against the number of
preference pairs), results/data_efficiency_summary.json, and the README section between the data-efficiency markers:
the curves' table and the pairs multiplier.

The protocol, fixed before any test number was looked at: for a KL budget B (3, 10 and 30 nats per completion),
each method's candidates are all its checkpoints (both strengths, every snapshot) and SFT itself (KL 0, the
start of every curve); the one with the highest mean gold reward on the val prompts among those whose val KL is
at most B is chosen, and its test numbers are reported, mean and standard deviation over the three seeds.
"""
import glob
import itertools
import json
import math
import os
import random
import re
import statistics
import textwrap
import zlib

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from frontier import ROOT, SEEDS, TASKS  # noqa: E402  (the sweep's own seeds and tasks)
import data_efficiency as DE  # noqa: E402
import data_efficiency_v2 as DE2  # noqa: E402

RES = os.path.join(ROOT, 'results')
TEMPLATE = os.path.join(ROOT, 'experiments', 'report_template.md')
REPORT = os.path.join(ROOT, 'REPORT.md')
BUDGETS = (3, 10, 30)
METHODS = {'dpo': 'DPO (offline)', 'odpo_sft': 'online DPO, SFT sampler', 'odpo_dpo': 'online DPO, DPO sampler',
           'rloo': 'RLOO (RM + RL)', 'best_of_n': 'best-of-N (RM)'}
COLORS = {'dpo': 'C0', 'odpo_sft': 'C2', 'odpo_dpo': 'C4', 'rloo': 'C3', 'best_of_n': 'C1', 'rloo_local': 'C5',
          'best_of_n_dpo': 'C7', 'dpo_human': 'C8', 'dpo_e6': 'C9', 'dpo_e12': 'C6', 'rloo_small': 'navy', 'dpo_dense': 'skyblue',
          'dpo_own': 'teal'}
PAPER = {'sentiment': 'paper: RM + RL above offline DPO at every KL (verifying is simpler than generating)',
         'short': 'paper: no gap, curves level (two-token outputs, no horizon)',
         'overlap': 'paper: no gap, curves level (the verifier must know the answer)'}
# H1, the isomorphism: the three runs at beta 0.1, the same RLOO settings against two rewards; DPO also seen
# three times as often (sentiment: the same run, a snapshot every 1/6 epoch)
H1_RUNS = ('dpo_b0.1', 'dpo_dense_b0.1', 'rloo_b0.1', 'rloo_local_b0.1', 'bon')
H1_METHODS = {'dpo': 'DPO (offline)', 'dpo_dense': 'DPO, a snapshot every 1/6 epoch', 'rloo': 'RLOO, global RM',
              'rloo_local': "RLOO, DPO's implicit reward"}
H1_PAPER = {t: ("theorem: RLOO on DPO's implicit reward lands on DPO's curve; paper: RLOO on the global RM above both"
                if t == 'sentiment' else "theorem: RLOO on DPO's implicit reward lands on DPO's curve; paper: no gap")
            for t in TASKS}
# H4, narrow data: the frontier's DPO (pairs of two SFT samples) against DPO on SFT-sample-vs-human pairs
H4_METHODS = {'rloo': 'RLOO (RM + RL)', 'dpo': 'DPO, on-policy pairs (two SFT samples)',
              'dpo_human': 'DPO, off-policy pairs (SFT sample vs human)'}
H4_PAPER = {t: 'paper: narrow on-policy data is not why online wins' for t in TASKS}
# H3, more epochs for offline: DPO at 3, 6 and 12 epochs against the online methods, all at beta 0.1
H3_METHODS = {'rloo': 'RLOO (RM + RL)', 'odpo_sft': 'online DPO, SFT sampler', 'dpo': 'DPO, 3 epochs',
              'dpo_e6': 'DPO, 6 epochs', 'dpo_e12': 'DPO, 12 epochs'}
H3_PAPER = {t: 'paper: more epochs do not close the gap' for t in TASKS}
# RM size against policy size (sentiment): RLOO against a scratch RM of 1/8 the policy's size, from the SFT policy
# and from one twice as wide (its runs are named wide_*; read with the wide_ dropped, against the wide SFT)
# The SFT-sized policy's DPO is also seen every 1/6 epoch (H1's dense run), as a control for the wide DPO's denser
# snapshots (every 31 steps against 63)
SIZE_RUNS = ('dpo_b0.1', 'rloo_b0.1', 'bon', 'rloo_small_b0.1')
SIZE_METHODS = {'dpo': 'DPO (offline)', 'rloo': 'RLOO, RM from SFT (2.6M)', 'best_of_n': 'best-of-N (RM from SFT)',
                'rloo_small': 'RLOO, scratch RM (0.31M)'}
SIZE_BASE_METHODS = {'dpo': SIZE_METHODS['dpo'], 'dpo_dense': 'DPO, a snapshot every 1/6 epoch', **SIZE_METHODS}
# the wide policy's DPO also on pairs of its own samples (the frontier's pairs are the SFT-sized policy's)
SIZE_WIDE_METHODS = {'dpo': SIZE_METHODS['dpo'], 'dpo_own': "DPO, pairs of the wide SFT's own samples", **SIZE_METHODS}
SIZE_PAPER = {t: 'paper: a small verifier suffices where verifying is simpler' for t in TASKS}
SIZE_WIDE_PAPER = {t: 'policy twice as wide (8.7M), same RMs and pairs; paper: the gap grows' for t in TASKS}
# (README section and summary file, figure file, runs, methods (the new one last), claims, paired differences)
HYPOTHESES = (('h1', 'h1_isomorphism', H1_RUNS, H1_METHODS, H1_PAPER,
               (('rloo', 'rloo_local'), ('rloo_local', 'dpo'), ('rloo_local', 'dpo_dense'))),
              ('h4', 'h4_narrow', ('rloo_b0.1', 'dpo_b0.1', 'dpo_human_b0.1', 'bon'), H4_METHODS, H4_PAPER,
               (('dpo_human', 'dpo'), ('rloo', 'dpo_human'))),
              ('h3', 'h3_epochs', ('dpo_b0.1', 'dpo_e6_b0.1', 'dpo_e12_b0.1', 'odpo_sft_b0.1', 'rloo_b0.1', 'bon'),
               H3_METHODS, H3_PAPER, (('dpo_e12', 'dpo'), ('rloo', 'dpo_e12'))),
              ('size', 'size_base', SIZE_RUNS + ('dpo_dense_b0.1',), SIZE_BASE_METHODS, SIZE_PAPER,
               (('rloo', 'dpo'), ('rloo_small', 'dpo'), ('rloo_small', 'dpo_dense'))),
              ('size_wide', 'size_wide', SIZE_RUNS + ('dpo_own_b0.1', 'dpo_lr0.0003_b0.1', 'rloo_small_lr0.0003_b0.1'),
               SIZE_WIDE_METHODS, SIZE_WIDE_PAPER,
               (('rloo', 'dpo'), ('rloo_small', 'dpo'), ('dpo_own', 'dpo'), ('rloo_small', 'dpo_own'))))


def wide_rows(rows):
    """The wide policy's runs (experiments/size.py), named as the SFT-sized ones: wide_bon gives its SFT point. A
    method's runs at another learning rate (wide_dpo_lr0.0003_b0.1) keep their run but share the method, so the
    val choice within a budget picks the rate with the checkpoint."""
    return [{**r, 'run': r['run'][5:], 'method': re.sub(r'_lr[0-9.e-]+$', '', r['method'].removeprefix('wide_'))}
            for r in rows if r['run'].startswith('wide_')]


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


def summarise(rows, methods=METHODS):
    out = {}
    for task in TASKS:
        seeds = seeds_of(rows, task)
        for method in methods:
            for b in BUDGETS:
                picks = {s: choose(rows, task, s, method, b) for s in seeds}
                picks = {s: p for s, p in picks.items() if p is not None}
                if picks:
                    out.setdefault(task, {}).setdefault(method, {})[b] = {
                        s: {k: p[k] for k in ('run', 'name', 'gold_reward', 'gold_reward_ci', 'kl', 'win_vs_human',
                                              'length', 'eos_rate', 'top_words', 'examples')}
                        for s, p in picks.items()}
    return out


def run_settings(run, method):
    """'dpo_lr0.0003_b0.1' of method 'dpo' reads 'lr 0.0003, beta 0.1'."""
    return ', '.join(('beta ' + p[1:]) if p.startswith('b') else ('lr ' + p[2:])
                     for p in run.removeprefix(f'{method}_').split('_'))


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


def h2_md(rows, budgets=(10, 30)):
    """H2, regularisation: RLOO's lead over DPO when both use one beta, and when each uses its own (both betas
    candidates, chosen on val: the frontier's table). From the frontier's records alone."""
    settings = {f'both at beta {b}': [r for r in rows if r['run'] == 'bon' or r['run'].endswith(f'_b{b}')]
                for b in ('0.1', '0.03')}
    settings['each at its own beta'] = rows
    L = ['| task | beta | ' + ' | '.join(f'RLOO - DPO, KL <= {b}' for b in budgets) + ' |', '|---|---|' + '---|' * len(budgets)]
    for task in TASKS:
        for label, rs in settings.items():
            summ = summarise(rs, ('rloo', 'dpo'))
            L.append(f'| {task} | {label} | ' + ' | '.join(diff_cell(summ, task, 'rloo', 'dpo', b) for b in budgets) + ' |')
    return '\n'.join(L)


def verifier_acc(sweep='frontier'):
    """{(task, run): {seed: held-out accuracy}} (the 500 untied val pairs) at the end of training: the global RMs
    and the implicit reward beta log(pi/pi_ref) of each DPO run, from one sweep's training logs (sweeps that ran
    on different machines trained different verifiers from the same commands)."""
    acc = {}
    for path in glob.glob(os.path.join(RES, sweep, 'logs', 'seed*_*_*.jsonl')):
        seed, task, run = re.match(r'seed(\d+)_([a-z]+)_(.+)\.jsonl', os.path.basename(path)).groups()
        if run in VERIFIERS:
            last = [json.loads(line) for line in open(path)][-1]
            acc.setdefault((task, run), {})[int(seed)] = last['val_pref_acc']
    return acc


VERIFIERS = {'rm': 'global RM (from SFT)', 'dpo_b0.1': 'DPO implicit reward, beta 0.1',
             'dpo_b0.03': 'DPO implicit reward, beta 0.03', 'rm_small': 'global RM from scratch, 1/8 size'}  # the last: size.py


def verifier_md(sweep='frontier'):
    acc = verifier_acc(sweep)
    runs = [run for run in VERIFIERS if any(r == run for _, r in acc)]
    L = ['| task | ' + ' | '.join(VERIFIERS[r] for r in runs) + ' |', '|---|' + '---|' * len(runs)]
    for task in TASKS:
        cells = []
        for run in runs:
            v = acc.get((task, run), {})
            cells.append(' / '.join(f'{v[s]:.3f}' for s in sorted(v, key=SEEDS.index)) if v else '-')
        if any(c != '-' for c in cells):
            L.append(f'| {task} | ' + ' | '.join(cells) + ' |')
    return ('Held-out preference accuracy on the 500 untied val pairs at the end of training (per seed, 1337 / 1 / 2; '
            f'from the training logs in `results/{sweep}/logs/`): how well each learned verifier ranks unseen pairs.\n\n'
            + '\n'.join(L))


def labels_md():
    L = ['| task | seed | tau | untied agreement (train) | tie rate (train / val) | pairs drawn for 4000 + 500 untied | '
         'train prompts used |', '|---|---|---|---|---|---|---|']
    for path in sorted(glob.glob(os.path.join(RES, 'frontier', 'labels_*.json'))):
        d = json.load(open(path))
        L.append(f"| {d['task']['name']} | {d['seed']} | {d['tau']:.3f} | {d['train']['agreement']:.1%} | "
                 f"{d['train']['tie_rate']:.1%} / {d['val']['tie_rate']:.1%} | "
                 f"{d['train']['n_drawn']} + {d['val']['n_drawn']} | {d['train']['n_prompts']} |")
    return '\n'.join(L)


def words_md(summ, budgets=(10, 30)):
    L = ['| task | method | ' + ' | '.join(f'chosen at KL <= {b}' for b in budgets) + ' |', '|---|---|' + '---|' * len(budgets)]
    for task in TASKS:
        for method, label in METHODS.items():
            cells = []
            for b in budgets:
                p = summ.get(task, {}).get(method, {}).get(b, {}).get(1337)
                cells.append('-' if not p else 'SFT itself' if p['name'] == 'sft+bo1' else
                             f"EOS {p['eos_rate']:.0%}, length {p['length']:.1f}: "
                             + ', '.join(f'"{w}" {v:+.0f}' for w, v in p['top_words'][:6]))
            if any(c != '-' for c in cells):
                L.append(f'| {task} | {label} | ' + ' | '.join(cells) + ' |')
    return ('What the chosen policies write (seed 1337, test prompts): the share of completions that end with EOS, '
            'the mean length in tokens, and the words used most beyond SFT (extra uses per 100 completions, read '
            'in place as the verifier reads them):\n\n' + '\n'.join(L))


def examples_md(rows, summ, task='sentiment', seed=1337, budget=10):
    picks = {m: summ.get(task, {}).get(m, {}).get(budget, {}).get(seed) for m in ('dpo', 'rloo')}
    if not all(picks.values()):
        return ''
    sft = sft_row([r for r in rows if r['task'] == task and r['seed'] == seed and r['split'] == 'test'])
    L = [f"Samples on the first three test prompts ({task}, seed {seed}): SFT and the checkpoints of DPO and RLOO "
         f"chosen at KL <= {budget} (test KL: DPO {picks['dpo']['kl']:.1f}, RLOO {picks['rloo']['kl']:.1f}); "
         "gold reward in brackets.", '']
    for i in range(3):
        L.append(f"- prompt `{sft['examples'][i]['prompt']!r}`")
        for lab, ex in (('SFT', sft['examples'][i]), ('DPO', picks['dpo']['examples'][i]),
                        ('RLOO', picks['rloo']['examples'][i])):
            L.append(f"  - {lab}: `{ex['completion']!r}` ({ex['gold']:+.2f})")
    return '\n'.join(L)


# -----------------------------------------------------------------------------
# Data efficiency: gold reward at the budget against the number of pairs, and how many more pairs DPO needs.

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


def plot_seeds(ax, curve, color, label, **kw):
    """curve {x: {seed: y}}: a thin line per seed and a bold one for the seed mean."""
    xs = sorted(curve)
    for seed in sorted({s for v in curve.values() for s in v}):
        ax.plot(*zip(*[(x, curve[x][seed]) for x in xs if seed in curve[x]]), color=color, lw=0.6, alpha=0.35)
    ax.plot(xs, [statistics.mean(curve[x].values()) for x in xs], color=color, lw=2.2, marker='o', ms=4, label=label,
            **kw)


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
    for path in glob.glob(os.path.join(RES, 'data_efficiency', 'logs', 'seed*_*_*_n*.jsonl')):
        m = re.fullmatch(r'seed(\d+)_([a-z]+)_(rm|dpo)_n(\d+)\.jsonl', os.path.basename(path))
        if not m:  # RLOO's and online DPO's logs
            continue
        seed, task, kind, n = m.groups()
        ev = [r for r in map(json.loads, open(path)) if 'val_pref_acc' in r]
        r = max(ev, key=lambda r: r['val_pref_loglik']) if kind == 'rm' else ev[-1]
        acc.setdefault((task, kind, int(n)), {})[int(seed)] = (r['val_pref_acc'], r['step'])
    return acc


# ---- the second pass (experiments/data_efficiency_v2.py): a method's value at N is its val-chosen test row, per
# budget, over both betas; best-of-n by each N's RM, n chosen on val

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
    for path in glob.glob(os.path.join(RES, 'data_efficiency_v2', 'logs', 'seed*_*.jsonl')):
        m = re.fullmatch(r'seed(\d+)_([a-z]+)_(rm|dpo_b0\.1)_n(\d+)\.jsonl', os.path.basename(path))
        ev = [r for r in map(json.loads, open(path)) if 'val_pref_acc' in r] if m and int(m[4]) in DE2.NS[m[2]] else []
        if ev:
            out.setdefault((m[2], int(m[4])), {}).setdefault(m[3][:3], {})[int(m[1])] = (ev[-1]['val_pref_acc'],
                                                                                       ev[-1]['val_pref_loglik'])
    return out


def room(a, b, sft):
    """a - b over the better one's gain above SFT: a difference read against the room the task gives (sentiment's
    methods gain up to ~0.5 over SFT within 10 nats, overlap's ~0.05). None where neither gains."""
    gain = max(a, b) - sft
    return (a - b) / gain if gain > 0 else None


T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # Student's t, 97.5% quantile, by degrees of freedom


def t_interval_md(xs):
    """mean [95% t-interval over seeds] (n/n of them > 0); one seed has no interval."""
    m, sd = mean_sd(xs)
    if len(xs) < 2:
        return f'{m:+.2f} (1 seed)'
    h = T975[len(xs) - 1] * sd / math.sqrt(len(xs))
    return f'{m:+.2f} [{m - h:+.2f}, {m + h:+.2f}] ({sum(x > 0 for x in xs)}/{len(xs)} > 0)'


def de2_changes_md(rows, first_tables):
    """What changed between the passes, what each change was for, and what it did here, measured from the records
    of both passes (the first pass's at 10 nats; '-' where a change only saves CPU)."""
    fb = [w for t in de_fallbacks(load('data_efficiency')).values() for m in t.values() for ws in m.values() for w in ws]
    checks, (n_dense, same) = de2_checks(rows), de2_dense(rows)
    picks = [r for r in rows if r['split'] == 'test' and r['method'] in ('dpo', 'rloo') and r['setting'].endswith('_kl10')]
    acc = [de_rm_acc().get(('sentiment', 'rm', 1000), {}), de2_verifiers().get(('sentiment', 1000), {}).get('rm', {})]
    acc = [f'{statistics.mean(a for a, _ in v.values()):.3f}' if v else '-' for v in acc]
    off = lambda tables: sum(m['sign'] == '>' for t in tables.values() for k, m in t.items() if k.startswith('rloo/dpo@'))  # noqa: E731
    second = {t: de_table(de2_points(rows, 10), t, pairs=(('rloo', 'dpo'),)) for t in TASKS}
    n20 = sum(len(de_table(de2_points(rows, 20), t, pairs=(('rloo', 'dpo'),))) for t in TASKS)
    return '\n'.join([
        '| first pass | second pass | what it is for | what it did here |', '|---|---|---|---|',
        '| snapshots at a fraction of each run | every 5 steps to step 60, then every 20, for both methods at every N | '
        "long runs' first snapshot past the budget (SFT picked) | runs whose every snapshot was past 10 nats, SFT "
        f"chosen: {fb.count('over')} (first pass); runs with < 3 val snapshots inside 10 nats: {checks[10][1]} of "
        f'{checks[10][0]}, test picks that are SFT: {checks[10][2]} of {checks[10][3]} |',
        "| RM kept at its best val likelihood (`--keep_best`) | the frontier's RM at every N: 2 epochs, at least 250 "
        f"steps, its end | RMs kept at their first eval, with almost no scale | sentiment's RM at N = 1000, val "
        f'accuracy: {acc[0]} (first pass) against {acc[1]} |',
        '| one beta per method | 0.1 and 0.03 for both DPO and RLOO, chosen on val per N | unequal tuning | test picks '
        f"within 10 nats from a beta-0.03 run: {sum('_b0.03_' in (r['path'] or '') for r in picks)} of {len(picks)} |",
        "| N to 8000 | N to 16000 on sentiment and overlap (short: 8000, all its labeller supplies) | DPO's curve ending "
        "before it catches up | RLOO multipliers past the measured range (\"> max\"), 10 nats: "
        f'{off(first_tables)} (first pass) and {off(second)} |',
        '| 6 values of N on every task, val on every prompt twice | 5 on sentiment, 3 on short and overlap; val on 300 '
        'prompts once (test unchanged) | the cost | - |',
        f'| one budget (10 nats) | 10 and 20 nats | no room at small N | multipliers at 20 nats: {n20} |',
        "| best-of-64, online DPO | best-of-16, no online DPO | the cost (the first pass's largest single item) | - |",
        '| - | a run still left with < 3 val snapshots inside a budget is trained again (the same run, bitwise), a '
        'snapshot at every step up to its first one past the budget | a run that crosses the budget between two '
        f'snapshots | {n_dense} runs trained again; {same} match their first run at every shared step |'])


def de2_md(rows, first_tables):
    """The second pass's tables: per task and budget the curves and the multipliers (the first pass's beside them
    at 10 nats) and RLOO - DPO relative to the room; the protocol's checks; the verifiers at each N."""
    if not rows:
        return '`python experiments/data_efficiency_v2.py` has written no records yet.'
    L = [de2_changes_md(rows, first_tables), '', '| snapshots | budget | runs scored on val | runs with < 3 val snapshots inside it | test picks that are SFT itself |',
         '|---|---|---|---|---|']
    for spacing, rs in (('every 5 steps to 60, then every 20 (every step to the edge where that left < 3)', rows),
                        ('superseded: every 20 DPO / 10 RLOO steps', load('data_efficiency_v2/superseded'))):
        L += [f'| {spacing} | {b} nats | {n} | {few} | {s} of {p} |' for b, (n, few, s, p) in de2_checks(rs).items()]
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
                first = first_tables.get(task, {})
                if budget == DE.BUDGET and first:
                    cells = [mult_cell(first[k], n) if (k := f'rloo/dpo@{n}') in first else '-' for n in ns]
                    L.append('| first pass: RLOO (RM + RL) | ' + ' | '.join(cells) + ' |')
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


H5_RERANKERS = {'rm_n500': 'RM, 500 pairs', 'rm_n4000': 'RM, 4000 pairs', 'dpo_n500': "DPO's implicit reward, 500 pairs",
                'dpo_n4000': "DPO's implicit reward, 4000 pairs"}


def h5_best_of_n(rows, shown=(1, 4, 16, 64)):
    """H5 with best-of-N: the test gold reward of the best of n SFT samples (the same samples for every reranker)
    picked by each verifier of the data-efficiency sweep, against n; a figure per task and a table."""
    L = ['Test gold reward of the best of n SFT samples by each verifier (the same 64 samples per prompt for all; '
         'mean ± sd over seeds; n = 1 is SFT):', '', '| task | reranker | ' + ' | '.join(f'n = {n}' for n in shown) + ' |',
         '|---|---' + '|---' * len(shown) + '|']
    for task in TASKS:
        test = [r for r in rows if r['task'] == task and r['split'] == 'test' and r['method'] == 'best_of_n']
        curves = {rk: {} for rk in H5_RERANKERS}  # reranker: {n: {seed: gold}}
        for r in test:
            rk = os.path.basename(r['rm'] or '')
            if rk in curves:
                curves[rk].setdefault(r['best_of'], {})[r['seed']] = r['gold_reward']
        if not any(curves.values()):
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (rk, label), color in zip(H5_RERANKERS.items(), ('C1', 'C3', 'C7', 'C0')):
            plot_seeds(ax, curves[rk], color, label, ls='-' if rk.endswith('4000') else '--')
            cells = [pm(list(curves[rk][n].values())) if n in curves[rk] else '-'
                     for n in shown]
            L.append(f'| {task} | {label} | ' + ' | '.join(cells) + ' |')
        ax.set_xscale('log', base=2)
        ax.set_xlabel('n, samples per prompt (best-of-n)')
        ax.set_ylabel('test gold reward')
        seeds = sorted({s for c in curves.values() for v in c.values() for s in v}, key=SEEDS.index)
        save_fig(fig, ax, f'h5_best_of_n_{task}.png', task, seeds)
    return '\n'.join(L)


# -----------------------------------------------------------------------------
# What the runs cost and how fast the code is: README's costs, study_costs and performance blocks (the last also
# in REPORT.md), from the timings the runners write and from bench/bench.py's record.

DEMO = os.path.join('results', 'demo', 'sentiment_seed1337')  # what `bash run.sh` copies (seed 1337, sentiment)
SWEEPS = {'frontier': 'the frontier', 'hypotheses': 'the hypotheses (H1, H3, H4)', 'size': 'RM size and policy size',
          'data_efficiency': 'data efficiency', 'data_efficiency_v2': 'data efficiency, second pass'}


def min_s(seconds):
    m, s = divmod(round(seconds), 60)
    return f'{m} min {s} s'


def costs_md(demo=DEMO):
    """The main job's wall time from the timings.tsv `bash run.sh` writes: `stage<TAB>seconds` lines, then `total`
    (this invocation) and `load` (/proc/loadavg at the end); a `cpus` line, if present, gives the machine."""
    path = os.path.join(ROOT, demo, 'timings.tsv')
    if not os.path.exists(path):
        return (f"The main job's wall time is not yet recorded: `bash run.sh` writes it, stage by stage, to "
                f"`{demo}/timings.tsv`.")
    rows = dict(line.rstrip('\n').split('\t', 1) for line in open(path) if '\t' in line)
    total, load, cpus = (rows.pop(k, None) for k in ('total', 'load', 'cpus'))
    task, seed = re.fullmatch(r'(.+)_seed(\d+)', os.path.basename(demo)).groups()
    fig = os.path.join(demo, 'frontier.png')
    where = f'a {cpus}-core CPU' if cpus else 'CPU'
    head = (f'`bash run.sh` took {min_s(float(total))} of wall time on {where}' if total else
            "`bash run.sh`'s whole wall time is not in its record")
    line = (f'{head} (seed {seed}, {task}; per stage: `{demo}/timings.tsv`)' +
            (f', its figure: `{fig}`' if os.path.exists(os.path.join(ROOT, fig)) else '') + '.')
    stages = ', '.join(f'{k} {float(v):.0f} s' for k, v in rows.items())
    old = os.path.join('results', 'run_sentiment_seed1_timings.txt')  # the retired run.sh, on a quiet machine
    if total and 'sft' in rows and os.path.exists(os.path.join(ROOT, old)):
        was = dict(l.split() for l in open(os.path.join(ROOT, old)))
        k = float(rows['sft']) / float(was['sft'].rstrip('s'))
        line += (f" Machines differ: its SFT stage, the same command as the retired run.sh's, took {float(rows['sft']):.0f} s "
                 f"here against {was['sft'].rstrip('s')} s in a quiet earlier run (`{old}`), {k:.1f}x as long; at that "
                 f"speed the whole job would take about {min_s(float(total) / k)}.")
    return line + (f'\nStages, wall seconds (some run side by side): {stages}' + (f'; load average at the end: {load}' if load else '') +
                   (". The total covers the last invocation only: a stage finished before is reused, not rerun."
                    if total else '.') if rows else '')


def timings(sweep):
    """[(job, wall seconds or None where unrecorded)] from results/<sweep>/timings.tsv, in its order, then the jobs
    of attempts whose records were set aside (results/<sweep>/superseded/ and stale/, each with its timings.tsv)
    and that were redone or dropped since, as 'superseded:<job>' or 'stale:<job>': they spent CPU too."""
    def read(path):
        return [(name, None if x == 'unrecorded' else float(x))
                for name, x in (line.rstrip('\n').split('\t') for line in open(path))] if os.path.exists(path) else []
    now = read(os.path.join(RES, sweep, 'timings.tsv'))
    return now + [(f'{aside}:{n}', x) for aside in ('superseded', 'stale')
                  for n, x in read(os.path.join(RES, sweep, aside, 'timings.tsv')) if (n, x) not in now]


def set_aside_md(sweep):
    """The blocks a sweep set aside (results/<sweep>/stale/), with their jobs and CPU time, or 'none'."""
    st = [(n, x) for n, x in timings(sweep) if n.startswith('stale:')]
    if not st:
        return 'none'
    blocks = sorted({'`{1}` seed {0}'.format(*re.search(r'seed(\d+)/(\w+)', n).groups()) for n, _ in st})
    return (f"{', '.join(blocks)} ({len(st)} jobs, {sum(x or 0 for _, x in st) / 3600:.1f} one-thread CPU hours, "
            "counted in the sweep's cost)")


def own_timings(sweep):
    """A sweep's timings.tsv also lists the jobs of earlier sweeps it reuses (the frontier's SFT, pairs and runs):
    each job counts once, under the first sweep of SWEEPS that lists it with the same seconds (another time is
    another run: the job redone on another machine)."""
    earlier = set()
    for s in SWEEPS:
        if s == sweep:
            break
        earlier |= set(timings(s))
    return [(n, x) for n, x in timings(sweep) if (n, x) not in earlier]


def gpu_record(sweep):
    """What results/<sweep>/gpu/ says, or None: the device (device.txt: nvidia-smi's header and line, torch, cores),
    and per runner call (runner_call*.log) its wall seconds, workers and the jobs it finished {job: seconds}."""
    d = os.path.join(RES, sweep, 'gpu')
    logs = sorted(glob.glob(os.path.join(d, 'runner_call*.log')))
    if not logs:
        return None
    dev = open(os.path.join(d, 'device.txt')).read().splitlines() if os.path.exists(os.path.join(d, 'device.txt')) else []
    calls = []
    for path in logs:
        stamps, done, workers = [], {}, set()
        for line in open(path):
            m = re.match(r'(\d\d):(\d\d):(\d\d) (.*)', line)
            if not m:
                continue
            stamps.append(int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]))
            if d_ := re.fullmatch(r'done (\S+) in (\d+) s', m[4].strip()):
                done[d_[1]] = int(d_[2])
            if w := re.search(r'(\d+) workers', m[4]):
                workers.add(int(w[1]))
        wall = sum((b - a) % 86400 for a, b in zip(stamps, stamps[1:]))  # a call may run past midnight
        calls.append({'wall': wall, 'done': done, 'workers': max(workers, default=None)})
    return {'name': dev[1].split(',')[0].strip() if len(dev) > 1 else 'GPU',
            'torch': dev[2].strip() if len(dev) > 2 else None, 'cores': dev[3].strip() if len(dev) > 3 else None,
            'calls': calls, 'wall': sum(c['wall'] for c in calls),
            'workers': max((c['workers'] for c in calls if c['workers']), default=None)}


def device_split(sweep):
    """(jobs timed on the GPU, jobs run there but timed elsewhere, jobs never run there), from the sweep's own timings
    and its GPU runner logs: a job whose timings.tsv seconds differ from the runner's (by more than its 1 s rounding)
    was redone elsewhere, on the CPU."""
    g = gpu_record(sweep)
    on = {j: s for c in (g['calls'] if g else []) for j, s in c['done'].items()}
    own = own_timings(sweep)
    gpu = [(n, x) for n, x in own if n in on and x is not None and abs(x - on[n]) <= 1]
    redone = [(n, x) for n, x in own if n in on and (x is None or abs(x - on[n]) > 1)]
    return gpu, redone, [(n, x) for n, x in own if n not in on]


def study_costs_md():
    L = ['| study | jobs | wall time of its jobs, summed | where it ran |', '|---|---|---|---|']
    for sweep, label in SWEEPS.items():
        own = own_timings(sweep)
        if not own:
            continue
        g = gpu_record(sweep)
        untimed = sum(x is None for _, x in own)
        hours = lambda js: sum(x for _, x in js if x is not None) / 3600  # noqa: E731
        spare = f' ({untimed} without a recorded time)' if untimed else ''
        if g is None:
            L.append(f'| {label} | {len(own)}{spare} | {hours(own):.1f} one-thread CPU-hours | CPU, one thread per job |')
            continue
        gpu, redone, cpu = device_split(sweep)
        L.append(f"| {label} | {len(own)}{spare} | {hours(gpu):.1f} h on the GPU ({len(gpu)} jobs, "
                 f"{g['workers']} at a time), {hours(redone + cpu):.1f} one-thread CPU-hours ({len(redone + cpu)} jobs) | "
                 f"{len(gpu) + len(redone)} jobs on one {g['name']} ({len(redone)} of them redone on CPU), "
                 f"{len(cpu)} on CPU only; see REPORT.md's data-efficiency section |")
    return ('\n'.join(L) + '\n\nFrom each study\'s `results/<study>/timings.tsv` (a job\'s wall seconds from its start to '
            'its DONE); a job a study reuses from an earlier one (the frontier\'s SFT, pairs and runs) counts once, '
            'under the first. GPU hours are wall time under sharing, not one job alone; the GPU machine: '
            '`results/data_efficiency/gpu/`.')


def bench_names():
    """The benchmarks' names in results/bench.md's first table (its rows in results/bench.json's order)."""
    path = os.path.join(RES, 'bench.md')
    names, inside = [], False
    for line in open(path) if os.path.exists(path) else []:
        if not line.startswith('|'):
            if inside:
                break
            continue
        cell = line.split('|')[1].strip()
        if cell == 'benchmark':
            inside = True
        elif inside and not cell.startswith('---'):
            names.append(cell)
    return names


def performance_md():
    path = os.path.join(RES, 'bench.json')
    if not os.path.exists(path):
        return 'Not measured yet: `python bench/bench.py` writes `results/bench.json` and `results/bench.md`.'
    b = json.load(open(path))
    meta, res = b['meta'], b['results']
    names = bench_names()
    names = dict(zip(res, names if len(names) == len(res) else res))
    num = lambda x: f'{x:.0f}' if x >= 1000 else f'{x:.1f}'  # noqa: E731
    peer = lambda r: re.sub(r'^(transformers|trl) \S+ ', '', r['peer_label'].split('(')[0].strip().rstrip(','))  # noqa: E731
    L = ['| work | repo | peer | repo / peer |', '|---|---|---|---|']
    for k, r in res.items():
        L.append(f"| {names[k]} | {num(r['repo_median'])} {r['unit']} | {num(r['peer_median'])} {r['unit']} "
                 f"({peer(r)}) | {r['ratio']:.2f}x |")
    steps = {k: r['steps_per_rep'] for k, r in res.items()}
    common = statistics.mode(steps.values())
    odd = ', '.join(f'{n} for {names[k].split(" (")[0]}' for k, n in steps.items() if n != common)
    loads = [r[k] for r in res.values() for k in ('load_before', 'load_after') if k in r]
    v = meta['versions']
    gpu = ('GPU: see `results/gpu.md`.' if os.path.exists(os.path.join(RES, 'gpu.md')) else
           'The GPU path (bf16 autocast, fused AdamW, `--compile`) is not yet measured: `bash bench/gpu_check.sh` '
           '(written, not yet run on a GPU) will record it in `results/gpu.md`.')
    return '\n'.join(L) + (
        f"\n\nMedians over {meta['reps']} repetitions of {common} steps per side ({odd})" if odd else
        f"\n\nMedians over {meta['reps']} repetitions of {common} steps per side") + (
        f", the two sides alternating step by step, {meta['threads']} thread per side, on {meta['machine']} with "
        f"{meta['cpus']} CPUs, torch {v['torch']}" + (f", 1-minute load average {min(loads):.2f}-{max(loads):.2f}"
                                                      if loads else '') +
        f"; measured {meta['date'].split()[0]}. The peer: transformers {v['transformers']} and trl {v['trl']} on the same "
        "model shape, the repo's weights copied in. `python bench/bench.py` made it; every repetition and what exactly "
        "is timed: `results/bench.md`."
        f"\n\n{waits_md()}\n\n{gpu}")


def waits_md():
    """What users wait on, beside the per-step figures: the main job and a study, and where their time goes."""
    path = os.path.join(ROOT, DEMO, 'timings.tsv')
    rows = dict(line.rstrip('\n').split('\t', 1) for line in open(path) if '\t' in line) if os.path.exists(path) else {}
    job = (f"the main job (`bash run.sh`) {min_s(float(rows['total']))} of wall time on a {rows.get('cpus', '?')}-core "
           f"CPU (`{DEMO}/timings.tsv`)" if 'total' in rows else "the main job's wall time is not yet recorded")
    hours = sum(x for _, x in own_timings('frontier') if x is not None) / 3600
    prof = os.path.exists(os.path.join(RES, 'profile.md'))
    return (f"What users wait on: {job}; the frontier study {hours:.1f} one-thread CPU-hours. " +
            ("Where that time goes, stage by stage and op by op: `results/profile.md` (`python bench/profile_stages.py`)."
             if prof else "`python bench/profile_stages.py` writes where that time goes to `results/profile.md`."))


def fill_markers(text, blocks):
    """Put blocks[NAME] between <!-- NAME:begin (made by experiments/report.py) --> and <!-- NAME:end -->, indented
    as the begin marker is (a block inside a list item stays in it); text without the markers is left as it is."""
    for name, md in blocks.items():
        begin, end = f'<!-- {name}:begin (made by experiments/report.py) -->', f'<!-- {name}:end -->'
        text = re.sub(r'(?m)^([ \t]*)' + re.escape(begin) + '.*?' + re.escape(end),
                      lambda m: f'{m[1]}{begin}\n{textwrap.indent(md, m[1])}\n{m[1]}{end}', text, flags=re.S)
    return text


# ---- H1 to its end (experiments/hypotheses.py): RLOO against DPO's implicit reward for 1000 steps, its snapshots
# scored on test against SFT and against the DPO policy, the DPO policy beside them

def h1_end(rows):
    """{seed: {'dpo': (DPO's KL to SFT, its gold), 'steps': [(step, KL(RL || DPO), KL(RL || SFT), gold RL - DPO)]}}
    from the two test records of each seed that has both."""
    out = {}
    for seed in SEEDS:
        rec = {ref: [r for r in rows if r['seed'] == seed and r['run'] == f'rloo_local_long{ref}_b0.1']
               for ref in ('', '_vs_dpo')}
        if not all(rec.values()):
            continue
        dpo = {ref: next(r for r in rs if r['name'] == 'dpo_b0.1') for ref, rs in rec.items()}
        snaps = {ref: {r['step']: r for r in rs if r['name'].startswith('rloo_local_long')} for ref, rs in rec.items()}
        out[seed] = {'dpo': (dpo['']['kl'], dpo['']['gold_reward']),
                     'steps': [(st, snaps['_vs_dpo'][st]['kl'], r['kl'], r['gold_reward'] - dpo['']['gold_reward'])
                               for st, r in sorted(snaps[''].items()) if st in snaps['_vs_dpo']]}
    return out


def h1_end_md(rows):
    """The figure of the approach to the DPO policy and its table: the first snapshot, step 200 (where H1's first
    run stopped) and the last, mean ± sd over seeds; and what the long run cost."""
    d = h1_end(rows)
    if not d:
        return '`python experiments/hypotheses.py` has not yet run H1 to its end.'
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, i, ylabel in zip(axes, (1, 3), ('KL(pi_RL || pi_DPO), nats per completion', 'gold reward: RL snapshot - DPO policy')):
        curve = {}  # {step: {seed: value}}
        for seed, v in d.items():
            for x in v['steps']:
                curve.setdefault(x[0], {})[seed] = x[i]
        plot_seeds(ax, curve, 'C5', "RLOO against DPO's implicit reward")
        ax.axhline(0, color='k', lw=0.8, ls=':')
        ax.set_xlabel('RLOO step')
        ax.set_ylabel(ylabel)
    axes[0].set_title(f"sentiment, seeds {', '.join(map(str, d))} (thin: each seed, bold: seed mean)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(RES, 'h1_to_its_end.png'), dpi=120)
    plt.close(fig)
    at = lambda s, st: next((x for x in d[s]['steps'] if x[0] == st), None)  # noqa: E731
    first, last = (min(x[0] for s in d for x in d[s]['steps']), max(x[0] for s in d for x in d[s]['steps']))
    cell = lambda xs, f='+.3f': '{:{f}} ± {:{g}}'.format(*mean_sd(xs), f=f, g=f.lstrip('+')) if xs else '-'  # noqa: E731
    L = ['![h1 to its end](results/h1_to_its_end.png)', '',
         '| RLOO step | KL(pi_RL \\|\\| pi_DPO) | KL(pi_RL \\|\\| SFT) | gold: RL - DPO | seeds |', '|---|---|---|---|---|']
    for st in sorted({first, 200, last}):
        xs = [at(s, st) for s in d if at(s, st)]
        L.append(f'| {st} | {cell([x[1] for x in xs], ".2f")} | {cell([x[2] for x in xs], ".2f")} | '
                 f'{cell([x[3] for x in xs])} | {len(xs)} |')
    L.append(f"| the DPO policy | 0 | {cell([v['dpo'][0] for v in d.values()], '.2f')} | 0 | {len(d)} |")
    kl0, gap0 = (statistics.mean(x[i] for s in d for x in [at(s, first)] if x) for i in (1, 3))
    kl1, gap1 = (statistics.mean(x[i] for s in d for x in [at(s, last)] if x) for i in (1, 3))
    n_above = sum(x[3] > 0 for s in d for x in [at(s, last)] if x)
    n_less = sum(x[2] < d[s]['dpo'][0] for s in d for x in [at(s, last)] if x)
    L += ['', f'Reading: from step {first} to step {last} the KL to the DPO policy falls from {kl0:.2f} to {kl1:.2f} nats and '
          f'the gold gap closes from {gap0:+.3f} to {gap1:+.3f}. The run approaches the DPO policy, as the theorem says, but '
          f'stops short of it: the KL to it flattens as the learning rate decays toward the schedule\'s floor. At the end it '
          f'is above the DPO policy on gold in {n_above} of {len(d)} seeds, and closer to SFT in {n_less}; the verdict rule calls a '
          f'difference that every seed shares a gap, so the row reads "disagrees", though that gap is '
          f'{abs(gap1 / gap0):.0%} of the one at step {first}.']
    cost = dict(timings('hypotheses'))
    secs = lambda run: [cost[k] for s in d if (k := f'out/frontier/seed{s}/sentiment/{run}') in cost and cost[k]]  # noqa: E731
    if secs('rloo_local_long_b0.1'):
        L += ['', f"Cost: the 1000-step run took {statistics.mean(secs('rloo_local_long_b0.1')):.0f} s of one thread per "
              f"seed (mean of {len(secs('rloo_local_long_b0.1'))}), the first 200-step run "
              f"{statistics.mean(secs('rloo_local_b0.1')):.0f} s (timed on another machine and day: compare with care)."]
    return '\n'.join(L)


# ---- RM size against policy size (experiments/size.py): its reading, from its own records only

def machine_drift():
    """{seed: ((gold, KL) of the frontier's dpo_b0.1 at its end, the same on another machine)}: H1 to its end
    retrained the frontier's SFT, pairs and DPO by the same commands on a second machine and scored that DPO
    policy on the test prompts; the frontier scored its own at step 375 on them."""
    out = {}
    for seed in SEEDS:
        there = [r for r in load() if (r['task'], r['seed'], r['run'], r['split']) == ('sentiment', seed, 'dpo_b0.1', 'test')
                 and r['step'] is not None]
        here = [r for r in load('hypotheses') if r['seed'] == seed and r['run'] == 'rloo_local_long_b0.1'
                and r['name'] == 'dpo_b0.1']
        if there and here:
            a = max(there, key=lambda r: r['step'])
            out[seed] = ((a['gold_reward'], a['kl']), (here[0]['gold_reward'], here[0]['kl']))
    return out


def size_md(summaries, vrows, budget=10):
    """Why size.py runs on one machine (the drift), how far its redo has got, each wide method's val-chosen rate,
    and the growth rows in words."""
    L = []
    drift = machine_drift()
    if drift:
        d = [b[0] - a[0] for a, b in drift.values()]
        there = mean_sd([a[0] for a, _ in drift.values()])
        L.append("Why one machine: the frontier's DPO command (beta 0.1, 3 epochs), rerun by H1 to its end on a second "
                 "machine on that machine's SFT and pairs (the same commands and seeds), ends at test gold " +
                 ' / '.join(f'{b[0]:+.3f}' for _, b in drift.values()) + ' (KL ' +
                 ' / '.join(f'{b[1]:.1f}' for _, b in drift.values()) + ') against the frontier\'s ' +
                 ' / '.join(f'{a[0]:+.3f}' for a, _ in drift.values()) + ' (KL ' +
                 ' / '.join(f'{a[1]:.1f}' for a, _ in drift.values()) + f') (seeds {", ".join(map(str, drift))}): '
                 f'{diff_md(d)}, where the frontier\'s seeds spread by {there[1]:.3f} (sd). A per-seed difference '
                 'between runs of two machines would carry that shift, so size.py compares only its own runs.')
    test = [r for r in load('size') if r['split'] == 'test']
    done = {}  # per block, the seeds with a test record of every run of it that any seed has
    for key in ('size', 'size_wide'):
        block = [r for r in test if r['run'].startswith('wide_') == (key == 'size_wide')]
        runs = {r['run'] for r in block}
        done[key] = [s for s in SEEDS if runs and runs <= {r['run'] for r in block if r['seed'] == s}]
    if len(done['size']) == len(SEEDS):  # h2: the frontier's beta-0.1 runs, whose commands the SFT-sized ones rerun
        same = [(b, paired(summaries['h2'], 'sentiment', 'rloo', 'dpo', b),
                 paired(summaries['size'], 'sentiment', 'rloo', 'dpo', b)) for b in (budget, 30)]
        L.append("The frontier's RLOO - DPO on sentiment at beta 0.1, the same commands rerun here: " + '; '.join(
            f"within {b} nats {diff_md(list(here.values()))} against the frontier's {diff_md(list(there.values()))}"
            for b, there, here in same) + '.')
    if min(len(v) for v in done.values()) < len(SEEDS):
        stale = os.path.exists(os.path.join(RES, 'size', 'stale'))
        L.append('`python experiments/size.py` is ' + ('being redone whole on one machine' if stale else 'running') +
                 f": seeds with every run scored on test so far: SFT-sized {len(done['size'])}, wide {len(done['size_wide'])} of "
                 f'{len(SEEDS)}.' + (" The first machine's records (compared with the frontier's runs, one fine-tuning "
                                     'rate on the wide policy) are in `results/size/stale/`.' if stale else ''))
        return '\n\n'.join(L)
    L.append(verifier_md('size'))
    wide_picks = summaries.get('size_wide', {}).get('sentiment', {})
    rates = []
    for method, label in (('dpo', 'DPO'), ('rloo_small', 'RLOO against the scratch RM')):
        picks = wide_picks.get(method, {}).get(budget, {})
        fast = sum('_lr' in p['run'] for p in picks.values())
        rates.append(f'{label}: the frontier\'s 3e-4 on {fast} of {len(picks)} seeds, half of it on the others')
    L.append(f'The wide policy\'s fine-tuning rate, chosen on val with the checkpoint within {budget} nats: ' + '; '.join(rates) + '.')
    for v in (v for v in vrows if v['source'] == 'growth' and v['d']):
        wide, base, wide_m, base_m = v['parts']
        L.append(f"Growth ({v['what']}): {diff_md(v['d'])}, {v['got']}, the difference between {pm(wide)} on the wide "
                 f"policy and {pm(base)} on the SFT-sized one" + (
                     f"; at matched KL {diff_md(v['dm'])}, {v['got_m']}, between {pm(wide_m)} and {pm(base_m)}." if v['dm'] else '.'))
    g = next((v for v in vrows if v['source'] == 'growth' and v['got']), None)  # the first growth row, in words
    if g:
        leads = 'leads DPO on the wide policy too' if pattern(g['parts'][0]) == 'gap' else 'does not lead DPO on the wide policy'
        grows = {'gap': 'grows', 'level': 'does not grow', 'reverse gap': 'shrinks'}
        L.append(f"In words: RLOO on the small verifier {leads}, and its lead {grows[g['got']]} with the policy" +
                 (f"; at matched KL it {grows[g['got_m']]}." if g['got_m'] and g['got_m'] != g['got'] else '.'))
    return '\n\n'.join(L)


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


def pattern(d):
    """'gap' if every seed's difference has the same sign and the mean exceeds the seed sd, else 'level'."""
    m, sd = mean_sd(d)
    return ('gap' if m > 0 else 'reverse gap') if len({x > 0 for x in d}) == 1 and abs(m) > sd else 'level'


def paired(summ, task, a, b, budget):
    """{seed: method a's chosen test gold - method b's}."""
    pa, pb = (summ.get(task, {}).get(m, {}).get(budget, {}) for m in (a, b))
    return {s: pa[s]['gold_reward'] - pb[s]['gold_reward'] for s in pa if s in pb}


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


def pm(xs):
    """'mean ± sd' of a list, to three places."""
    return '{:+.3f} ± {:.3f}'.format(*mean_sd(xs))


def diff_md(d):
    return f'{pm(d)} ({sum(x > 0 for x in d)}/{len(d)} > 0)'


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


def matched_sentence(vrows):
    """What the matched-KL column changes, in words, from the verdict rows themselves."""
    changed = [v for v in vrows if v['got'] and v['got_m'] and v['got'] != v['got_m']]
    if not changed:
        return 'It changes no pattern.'
    return (f'It changes the pattern of {len(changed)} row{"s" * (len(changed) > 1)}: ' +
            '; '.join(f"{v['h']} \"{v['claim']}\" ({v['task']}) goes from \"{v['got']}\" to \"{v['got_m']}\""
                      for v in changed) + '. The verdict column stays on the rule, as fixed.')


def headline_md(rows, summ, de2, budget=10):
    """README's headline: sentiment within the budget, SFT and three methods, and RLOO - DPO on every task."""
    seeds = seeds_of(rows, 'sentiment')
    sft = [sft_row([r for r in rows if r['task'] == 'sentiment' and r['seed'] == s and r['split'] == 'test'])
           for s in seeds]
    L = [f'| what | task | gold reward on test prompts, checkpoint chosen on val within {budget} nats of SFT, mean ± sd '
         f'over {len(seeds)} seeds | seeds where RLOO is ahead |', '|---|---|---|---|',
         f"| SFT, the starting policy | sentiment | {pm([r['gold_reward'] for r in sft])} | |"]
    for m, what in (('dpo', 'offline DPO'), ('rloo', 'reward model + RL (RLOO)'),
                    ('best_of_n', 'best-of-N, ranked by the reward model')):
        L.append(f"| {what} | sentiment | {pm([p['gold_reward'] for p in summ['sentiment'][m][budget].values()])} | |")
    for task, what in (('sentiment', 'RLOO - DPO'), ('short', 'RLOO - DPO, control: no horizon (two-token outputs)'),
                       ('overlap', 'RLOO - DPO, control: the verifier must know the answer')):
        d = list(paired(summ, task, 'rloo', 'dpo', budget).values())
        L.append(f'| {what} | {task} | {pm(d)} | {sum(x > 0 for x in d)} of {len(d)} |')
    n = counts(rows)
    return '\n'.join(L) + (f"\n\nSeeds {', '.join(map(str, seeds))}; every number is scored on the {n['test']} test "
                           f"prompts ({per_prompt(rows)}), the checkpoint chosen on the {n['val']} val prompts; tables, "
                           "figures and caveats: [REPORT.md](REPORT.md).") + budget_edge_md(rows, de2, budget)


def de2_summary(rows, n):
    """The second pass at one N in summarise's shape, {task: {method: {budget: {seed: test pick}}}}: its val-chosen
    picks per budget, so paired() and the verdict rows read it like any sweep."""
    points = {b: de2_points(rows, b) for b in DE2.BUDGETS}
    return {t: {m: {b: points[b][t][m][n] for b in DE2.BUDGETS if n in points[b].get(t, {}).get(m, {})}
                for m in ('rloo', 'dpo')} for t in TASKS if n in DE2.NS[t]}


def budget_edge_md(rows, de2, budget=10, n=4000):
    """The headline's caveat: how many val snapshots the frontier's DPO runs have inside the budget on sentiment, and
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


# Ablations: a method at a new setting, against the frontier's curves of the same task and seeds. Contract: the
# records in results/ablations/<NAME>/*.jsonl, named and shaped as results/frontier/*.jsonl, with 'method' == NAME
# (not one of METHODS) and 'setting' a free string (e.g. '--beta 0.3'); only the frontier's seeds are read.
PALETTE = ('magenta', 'gold', 'lime', 'crimson', 'saddlebrown', 'indigo', 'darkkhaki', 'deeppink')


def color(method):
    """The registry's colour, or one of PALETTE (none of them the registry's) picked by the name itself."""
    return COLORS.get(method) or PALETTE[zlib.crc32(method.encode()) % len(PALETTE)]


def ablation_md(frontier_rows, name):
    rows = [r for r in load(os.path.join('ablations', name)) if r['method'] == name]
    keys = {(r['task'], r['seed']) for r in rows} & {(r['task'], r['seed']) for r in frontier_rows}
    rows = [r for r in rows if (r['task'], r['seed']) in keys]
    if not rows:
        return ''
    settings = sorted({str(r['setting']) for r in rows if r['setting']})
    methods = {**METHODS, name: f"{name} ({', '.join(settings)})" if settings else name}
    rows = [r for r in frontier_rows if (r['task'], r['seed']) in keys] + rows
    summ = summarise(rows, methods)
    figs = [t for t in TASKS if any(k[0] == t for k in keys) and plot(rows, t, methods, f'ablations/{name}/frontier')]
    with open(os.path.join(RES, 'ablations', name, 'summary.json'), 'w') as f:  # the frontier's own are in frontier_summary.json
        json.dump({t: {name: v[name]} for t, v in summ.items() if name in v}, f, indent=1)
    shown = {t: v for t, v in summ.items() if t in figs}
    return '\n\n'.join([f'### {methods[name]}', *rebuilt_md(keys),
                         ''.join(f'![{name} {t}](results/ablations/{name}/frontier_{t}.png)\n' for t in figs),
                         markdown(rows, shown, methods), diffs_md(shown, ((name, 'dpo'), (name, 'rloo')), methods)])


def rebuilt_md(keys):
    """A line per (task, seed) whose SFT an ablation rebuilt (its log is in results/ablations/*/logs/): is it the
    frontier's? If not, the ablation starts from another SFT and other pairs than the curves it is drawn over."""
    out = []
    for task, seed in sorted(keys, key=lambda k: (TASKS.index(k[0]), SEEDS.index(k[1]))):
        logs = sorted(glob.glob(os.path.join(RES, 'ablations', '*', 'logs', f'seed{seed}_sft.jsonl')))
        if not logs:
            continue
        a, b = (json.loads(open(p).readlines()[-1]) for p in (logs[0], os.path.join(RES, 'frontier', 'logs', f'seed{seed}_sft.jsonl')))
        same = a['val_loss'] == b['val_loss'] and a['step'] == b['step']
        labels = [os.path.join(d, f'labels_{task}_seed{seed}.json') for d in (os.path.dirname(os.path.dirname(logs[0])),
                                                                              os.path.join(RES, 'frontier'))]
        tau = ' and '.join(f"{json.load(open(p))['tau']:.4f}" if os.path.exists(p) else '(not recorded)' for p in labels)
        out.append(f"The SFT of seed {seed} was rebuilt for an ablation with the frontier's command "
                   f"(`{os.path.relpath(logs[0], ROOT)}`): final val loss {a['val_loss']:.4f} against the frontier's "
                   f"{b['val_loss']:.4f}, labeller tau {tau} (rebuilt, frontier). " +
                   ("It is the frontier's SFT, bit for bit." if same else
                    "It is not the frontier's SFT bit for bit (today's command does not rebuild it exactly), so this curve starts from another SFT and other pairs than the frontier curves it is "
                    "drawn over; an ablation of the frontier's own command on the same rebuild (`--flags ''`) "
                    "measures what that changes."))
    return out


def ablations_md(frontier_rows):
    names = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(RES, 'ablations', '*', '')))
    md = [m for m in (ablation_md(frontier_rows, n) for n in names) if m]
    return '\n\n'.join(md) if md else 'None yet: `results/ablations/` holds no records.'


# -----------------------------------------------------------------------------
# The older records: the retired run.sh demo, H5 on its checkpoints, the exact theory.

DEMO_POLICIES = {'human_reference': 'human reference', 'sft': 'SFT', 'dpo': 'DPO', 'dpo2x': 'DPO (2 epochs)',
                 'odpo_sft': 'online DPO (SFT sampler)', 'odpo_dpo': 'online DPO (DPO sampler)', 'rloo': 'RLOO (global RM)'}
# the paper's own numbers (1.4B models, gpt-4o's win rate in %; its held-out "likelihood" of H5), quoted, not measured
DEMO_PAPER = {'sft': '26.2', 'dpo': '49.7', 'dpo2x': '52.2', 'odpo_sft': '56.1', 'odpo_dpo': '59.3'}
H5_DEMO = {'dpo': ('DPO implicit, beta log(pi/pi_ref)', '0.526'), 'dpo2x': ('DPO(2x) implicit', '-'),
           'rm_local': ('local RM, sum_t log pi_theta, from SFT', '0.567'), 'rm': ('global RM from SFT (2.57M)', '0.593'),
           'rm_small': ('global RM from scratch (0.36M, 2 layers x 64)', '-')}


def demo_runs():
    """{seed: results/run_sentiment_seed<seed>.json}, in the frontier's seed order."""
    runs = {int(re.search(r'seed(\d+)', p)[1]): json.load(open(p))
            for p in glob.glob(os.path.join(RES, 'run_sentiment_seed*.json'))}
    return {s: runs[s] for s in sorted(runs, key=lambda s: SEEDS.index(s) if s in SEEDS else len(SEEDS) + s)}


def demo_md():
    """The retired demo's table, one column group per seed, as `python eval.py table` prints its numbers."""
    runs = demo_runs()
    if not runs:
        return ''
    seeds = list(runs)
    beta = {r['beta'] for r in runs.values()}.pop()
    per = lambda p, f: ' / '.join(f(runs[s]['policies'][p]) for s in seeds)  # noqa: E731
    L = [f"| policy | gold reward, seed {seeds[0]} | " + ' | '.join(f'seed {s}' for s in seeds[1:]) +
         f" | win vs human ({' / '.join(map(str, seeds))}) | KL | gold - {beta:g} KL | paper (1.4B, gpt-4o win %) |",
         '|---' * (len(seeds) + 5) + '|']
    for p, label in DEMO_POLICIES.items():
        if not all(p in r['policies'] for r in runs.values()):
            continue
        gold = ' | '.join(f"{runs[s]['policies'][p]['gold_reward']:+.3f} ± {runs[s]['policies'][p]['gold_reward_ci']:.3f}"
                          for s in seeds)
        win = per(p, lambda q: f"{q['win_vs_human']:.2f}")
        if runs[seeds[0]]['policies'][p]['kl'] is None:
            L.append(f'| {label} | {gold} | {win} | - | - | - |')
            continue
        kl = per(p, lambda q: '0' if q['kl'] == 0 else f"{q['kl']:.2f}")
        obj = per(p, lambda q: f"{q['reward_minus_beta_kl']:+.2f}")
        L.append(f"| {label} | {gold} | {win} | {kl} | {obj} | {DEMO_PAPER.get(p, '-')} |")
    return '\n'.join(L)


def h5_demo_md():
    """H5 on the demo's seed-1337 checkpoints: held-out likelihood and accuracy of each reward (results/h5_*.json)."""
    L = ['| reward | log-likelihood, all pairs | log-likelihood, untied | accuracy (untied, vs labels) | paper (1.4B): '
         'held-out "likelihood" as reported |', '|---|---|---|---|---|']
    ll = lambda x: f'{x:.3f}' if abs(x) < 10 else f'{x:.2f}'  # noqa: E731
    for name, (label, paper) in H5_DEMO.items():
        path = os.path.join(RES, f'h5_sentiment_{name}.json')
        if os.path.exists(path):
            d = json.load(open(path))
            L.append(f"| {label} | {ll(d['loglik'])} | {ll(d['loglik_untied'])} | {d['acc']:.3f} | {paper} |")
    return '\n'.join(L)


def theory_md(key='H3_cv'):
    """Claim 3's table: KL(pi || pi*) of RM-then-RL and of DPO per number of pairs, mean ± sd over the worlds."""
    t = json.load(open(os.path.join(RES, 'theory.json')))['claim_3'][key]
    cell = lambda v: '{:.{nd}f} ± {:.{nd}f}'.format(*v, nd=3 if v[0] >= 0.005 else 4)  # noqa: E731
    L = ['| pairs | RM (linear) then RL | offline DPO | RM better |', '|---|---|---|---|']
    for n, v in t.items():
        L.append(f"| {n} | {cell(v['rm_then_rl/kl_pi_pistar'])} | {cell(v['dpo/kl_pi_pistar'])} | "
                 f"{v['rm_wins_kl_pi_pistar']}/{v['seeds']} |")
    return '\n'.join(L)


def jf(file, path=''):
    """A value in results/<file> (JSON), path 'a:b:0' (keys, or list indices)."""
    v = json.load(open(os.path.join(RES, file)))
    for k in filter(None, path.split(':')):
        v = v[int(k)] if isinstance(v, list) else v[k]
    return v


def jsonl(file):
    return [json.loads(line) for line in open(os.path.join(RES, file))]


def theory_facts():
    """Claims 1-2: the largest gaps where the optimum is unique (two DPO starts meet) and, where it is a set, the
    largest residual of the set claims; claim 3: the largest n at which DPO is ahead at a fixed ridge."""
    d = json.load(open(os.path.join(RES, 'theory.json')))
    c12 = {k: v for k, v in d['claims_1_2'].items() if 'dpo' in v}
    unique = {k: v for k, v in c12.items() if v['dpo_starts_apart'] < 1e-6}
    sets = {k: v for k, v in c12.items() if k not in unique}
    starts = lambda v, f: [v[s][f] for s in ('dpo', 'dpo_random_start') if f in v[s]]  # noqa: E731
    set_fields = ('value_gap', 'rm_grad_at_implicit_reward', 'soft_of_implicit_reward_vs_dpo')
    c3 = d['claim_3']

    def ahead(ridge):  # the largest n up to which DPO is ahead (RM better in under half the worlds) at every n
        last = None
        for n, v in c3[f'H3_{ridge}'].items():
            if v['rm_wins_kl_pi_pistar'] * 2 >= v['seeds']:
                break
            last = int(n)
        return last
    return {
        'tgap': max(x for v in unique.values() for x in starts(v, 'policy_gap_vs_rm_then_rl')),
        'tclosed': max(x for v in unique.values() for x in starts(v, 'policy_gap_vs_closed_form')),
        'tset': max([x for v in sets.values() for f in set_fields for x in starts(v, f)] +
                    [v[f] for v in sets.values() for f in ('dpo_grad_at_soft_of_rm_mle', 'dpo_value_at_soft_of_rm_mle_gap')]),
        'tapart': max(v['dpo_starts_apart'] for v in sets.values()),
        'th1': max(v['policy_gap_max'] for v in c3['H1_cv'].values()),
        'tahead': ahead, 'tminutes': d['seconds']['total'] / 60,
        'tcells': d['config']['V'] ** d['config']['H'], 'tfree_linear': d['config']['V'] - 1,
        'tfree_tabular': d['config']['V'] ** d['config']['H'] - 1, 'tseeds': len(d['config']['seeds']),
        'tgrid': '{' + ', '.join(f'{x:g}' for x in d['config']['ridge_claim3_grid']) + '}',
        'tpairs': lambda i: d['config']['pairs'][int(i)],
    }


def de_facts(points, tables, de_rows):
    """The data-efficiency reading's values: multiplier cells as the table writes them, fallbacks, ranges, and
    where the sweep ran (its GPU runner logs against its timings)."""
    fb = de_fallbacks(de_rows)
    g = gpu_record('data_efficiency')
    gpu, redone, cpu = device_split('data_efficiency')
    means = lambda t: [statistics.mean(v.values()) for c in points[t].values() for v in  # noqa: E731
                       ({n: {s: r['gold_reward'] for s, r in sv.items()} for n, sv in c.items()}).values()]
    kept = [st for v in de_rm_acc().values() for _, st in v.values()]
    return {
        'mult': lambda t, a, n: mult_cell(tables[t][f'{a}/dpo@{n}'], int(n)),
        'multv': lambda t, a, n: mult_cell(tables[t][f'{a}/dpo@{n}'], int(n)).split(' [')[0],
        'fb': lambda t, m, n, why: fb.get(t, {}).get(m, {}).get(int(n), []).count(why),
        'derange': lambda t: f'{min(means(t)):+.2f} to {max(means(t)):+.2f}',
        'rmstep': min(kept), 'gpu_name': g['name'], 'gpu_torch': g['torch'], 'gpu_cores': g['cores'],
        'gpu_workers': g['workers'], 'gpu_wall': min_s(g['wall']),
        'gpu_calls': sum(bool(c['done']) for c in g['calls']), 'gpu_idle_calls': sum(not c['done'] for c in g['calls']),
        'de_jobs': len(gpu) + len(redone) + len(cpu), 'de_gpu': len(gpu) + len(redone), 'de_redone': len(redone),
        'de_cpuonly': len(cpu), 'de_cpu': len(redone) + len(cpu),
        'de_cpublock': ', '.join(sorted({'`{}` seed {}'.format(*re.search(r'seed(\d+)/([a-z]+)/', n).groups()[::-1])
                                        for n, _ in redone + cpu})),
    }


def de2_facts(rows):
    """The second pass's values for the template's prose: per seed (1337 / 1 / 2) a test pick's field, RLOO - DPO
    paired over seeds (also relative to the room), and a multiplier cell, at a task, N and budget."""
    points = {b: de2_points(rows, b) for b in DE2.BUDGETS}
    picks = lambda t, m, n, b: points[int(b)][t][m][int(n)]  # noqa: E731
    sft = {(r['task'], r['seed']): r['gold_reward'] for r in rows if r['run'] == 'bon' and r['split'] == 'test' and r['best_of'] == 1}
    return {
        'de2pick': lambda t, m, n, b, field, nd='3': ' / '.join(
            f"{picks(t, m, n, b)[s][field]:.{int(nd)}f}" if field != 'step' else str(picks(t, m, n, b)[s]['step'])
            for s in SEEDS if s in picks(t, m, n, b)),
        'de2d': lambda t, n, b: mean_sd(list(paired(de2_summary(rows, int(n)), t, 'rloo', 'dpo', int(b)).values())),
        'de2g': lambda t, m, n, b: mean_sd([r['gold_reward'] for r in picks(t, m, n, b).values()]),
        'de2rel': lambda t, n, b: t_interval_md([room(picks(t, 'rloo', n, b)[s]['gold_reward'], picks(t, 'dpo', n, b)[s]['gold_reward'],
                                                      sft[t, s]) for s in picks(t, 'rloo', n, b)]),
        'de2mult': lambda t, n, b: mult_cell(de_table(points[int(b)], t, pairs=(('rloo', 'dpo'),))[f'rloo/dpo@{n}'], int(n)),
    }


def mult_cell(m, n):
    """A pairs multiplier as the data-efficiency table writes it: the value (or '> N'/N off the measured range) and
    its bootstrap interval."""
    lo, hi = (('> max' if math.isinf(x) else '< min' if x == 0 else f'{x:.2g}') for x in m['ci'])
    # off the measured range: the largest (smallest) N that DPO has, over N
    val = f"{m['sign']} {round(m['multiplier'] * n)}/{n}" if m['sign'] else f"{m['multiplier']:.2g}"
    return f'{val} [{lo}, {hi}]'


def other_facts():
    """Fields from single records: the demo, the lr sweeps, logs, labels, in_place, bench, side_by_side."""
    runs = demo_runs()
    pol = lambda field, *ps: [runs[s]['policies'][p][field] for s in runs for p in ps]  # noqa: E731
    rng = lambda xs, nd: f'{min(xs):.{nd}f}-{max(xs):.{nd}f}'  # noqa: E731
    last = lambda file, field: jsonl(file)[-1][field]  # noqa: E731

    def demo_time(seed):  # results/run_sentiment_seed<seed>_timings.txt: 'stage 273s' lines
        return [(a, int(b.rstrip('s'))) for a, b in (line.split() for line in open(
            os.path.join(RES, f'run_sentiment_seed{seed}_timings.txt')) if line.strip())]

    def klfrom(file, budget):  # the first step from which every val snapshot of a run is past the budget
        snaps = sorted((r['step'], r['kl']) for r in jsonl(file) if r['step'] is not None)
        over = [st for i, (st, _) in enumerate(snaps) if all(k > float(budget) for _, k in snaps[i:])]
        return over[0]

    def epochs_done(name):  # results/sweeps/<name>: its last logged step as a share of its planned epochs
        cfg = jf(f'sweeps/{name}.config.json')
        return last(f'sweeps/{name}.log.jsonl', 'step') / cfg['max_iters'] * cfg['epochs']
    sbs = [float(x) for x in re.findall(r'ratio ([\d.]+)', open(os.path.join(RES, 'side_by_side.txt')).read())]
    return {
        'demor': lambda field, nd, *ps: rng(pol(field, *ps), int(nd)),
        'demotop': lambda p: ' and '.join(str(s) for s, r in runs.items() if max(
            (q for k, q in r['policies'].items() if k != 'human_reference'), key=lambda q: q['gold_reward'])
            is r['policies'][p]),
        'demomid': lambda p: ' and '.join(str(s) for s, r in runs.items() if max(
            (q for k, q in r['policies'].items() if k != 'human_reference'), key=lambda q: q['gold_reward'])
            is not r['policies'][p]),
        'demometa': lambda field: {str(r[field]) for r in runs.values()}.pop(),
        'demototal': lambda seed: min_s(sum(x for _, x in demo_time(seed))),
        'demostages': lambda seed: ', '.join(f'{a} {x} s' for a, x in demo_time(seed)),
        'jf': lambda file, path='': jf(file, path), 'jlen': lambda file, path: len(jf(file, path)), 'last': last, 'klfrom': klfrom, 'epochs_done': epochs_done,
        'lastmean': lambda file, field, k: statistics.mean(r[field] for r in jsonl(file)[-int(k):]),
        'logat': lambda file, step, field: next(r[field] for r in jsonl(file) if r['step'] == int(step)),
        'seedlast': lambda d, name, field, nd: ' / '.join(f"{last(f'{d}/seed{s}_{name}.jsonl', field):.{int(nd)}f}"
                                                         for s in SEEDS),
        'taus': lambda prefix, nd: ' / '.join(f"{jf(f'{prefix}_seed{s}.json', 'tau'):.{int(nd)}f}" for s in SEEDS),
        'sbs': f'{min(sbs):.2f}-{max(sbs):.2f}', 'sbsmed': statistics.median(sbs),
        'logitdiff': max(r['max_logit_diff'] for r in jf('bench.json', 'results').values()),
    }


def facts(rows, summaries, sources, vrows, points, de_rows):
    """What the template's prose may quote: every value computed from the records. Helpers take strings (the
    template's words): a summary key, task, methods, budget; the digits where they give a range 'lo-hi'."""
    picks = lambda src, t, m, b: summaries[src][t][m][int(b)].values()  # noqa: E731
    rng = lambda xs, nd: f'{min(xs):.{nd}f}-{max(xs):.{nd}f}' if f'{min(xs):.{nd}f}' != f'{max(xs):.{nd}f}' \
        else f'{min(xs):.{nd}f}'  # noqa: E731
    every = {'frontier': rows, 'hypotheses': load('hypotheses'), 'size': load('size')}

    def run_pts(t, run, sweep='frontier'):  # {seed: the run's test snapshots in step order}
        out = {}
        for r in every[sweep]:
            if r['task'] == t and r['run'] == run and r['split'] == 'test' and r['step'] is not None:
                out.setdefault(r['seed'], []).append(r)
        return {s: sorted(v, key=lambda r: r['step']) for s, v in out.items()}
    de = lambda t, m, n: mean_sd([r['gold_reward'] for r in points[t][m][int(n)].values()])  # noqa: E731
    acc_de, acc_de2 = de_rm_acc(), de2_verifiers()
    acc = verifier_acc()
    n = counts(rows)
    timed = [line.rstrip('\n').split('\t') for line in open(os.path.join(RES, 'frontier', 'timings.tsv'))]
    return {
        'matched_sentence': matched_sentence(vrows), 'n_val': n['val'], 'n_test': n['test'], 'k': n['k'],
        'seeds': ', '.join(map(str, seeds_of(rows, 'sentiment'))),
        'cpu_hours': sum(float(x) for _, x in timed if x != 'unrecorded') / 3600,
        'untimed': sum(x == 'unrecorded' for _, x in timed),
        'g': lambda src, t, m, b: statistics.mean(p['gold_reward'] for p in picks(src, t, m, b)),
        'gainmax': lambda t, b: max(statistics.mean(p['gold_reward'] for p in picks('frontier', t, m, b))
                                    for m in summaries['frontier'][t]) - statistics.mean(
            sft_row([r for r in rows if r['task'] == t and r['seed'] == s and r['split'] == 'test'])['gold_reward']
            for s in seeds_of(rows, t)),
        'gsd': lambda src, t, m, b: mean_sd([p['gold_reward'] for p in picks(src, t, m, b)]),
        'kl': lambda src, t, m, b: statistics.mean(p['kl'] for p in picks(src, t, m, b)),
        'klr': lambda src, t, m, b, nd: rng([p['kl'] for p in picks(src, t, m, b)], int(nd)),
        'd': lambda src, t, a, b, bud: mean_sd(list(paired(summaries[src], t, a, b, int(bud)).values())),
        'dn': lambda src, t, a, b, bud: '{}/{}'.format(sum(x > 0 for x in paired(summaries[src], t, a, b, int(bud)).values()),
                                                     len(paired(summaries[src], t, a, b, int(bud)))),
        'runmax': lambda t, run, nd, sweep='frontier': rng([max(r['kl'] for r in v) for v in run_pts(t, run, sweep).values()], int(nd)),
        'rungold': lambda t, run, nd, sweep='frontier': rng([v[-1]['gold_reward'] for v in run_pts(t, run, sweep).values()], int(nd)),
        'runend': lambda t, run, nd, sweep='frontier': rng([v[-1]['kl'] for v in run_pts(t, run, sweep).values()], int(nd)),
        'ends': lambda t, nd, *runs: rng([v[-1]['kl'] for run in runs for v in run_pts(t, run).values()], int(nd)),
        'pickstep': lambda src, t, m, b, seed: int(summaries[src][t][m][int(b)][int(seed)]['name'].rsplit('_', 1)[1]),
        'per_prompt': per_prompt(rows, {'every trained policy': [m for m in METHODS if m != 'best_of_n']}),
        'pick': lambda src, t, m, b, seed, field: summaries[src][t][m][int(b)][int(seed)][field],
        'word': lambda src, t, m, b, seed, w: dict(summaries[src][t][m][int(b)][int(seed)]['top_words'])[w],
        'sft': lambda t, field: statistics.mean(sft_row([r for r in rows if r['task'] == t and r['seed'] == s and
                                                         r['split'] == 'test'])[field] for s in seeds_of(rows, t)),
        'sftseed': lambda t, seed, field: sft_row([r for r in rows if r['task'] == t and r['seed'] == int(seed) and
                                                   r['split'] == 'test'])[field],
        'demo': lambda seed, policy, field: json.load(open(os.path.join(RES, f'run_sentiment_seed{seed}.json')))[
            'policies'][policy][field],
        'vpm': lambda i: vrows[int(i)]['got_m'],
        'bon': lambda t, rk, n: mean_sd([r['gold_reward'] for r in de_rows if r['task'] == t and r['split'] == 'test'
                                         and r['method'] == 'best_of_n' and r['best_of'] == int(n)
                                         and os.path.basename(r['rm'] or '') == rk]),
        'deaccm': lambda t, kind, n: statistics.mean(a for a, _ in acc_de[t, kind, int(n)].values()),
        'de2stale': set_aside_md('data_efficiency_v2'),
        'de2acc': lambda t, kind, n: (lambda v: f'{statistics.mean(a for a, _ in v.values()):.3f} ({len(v)} of 3 seeds)'
                                      if v else 'not yet run')(acc_de2.get((t, int(n)), {}).get(kind)),
        'rmfirst': lambda n_max: '{} of the {}'.format(
            sum(st == min(x for v in acc_de.values() for _, x in v.values()) for (t, k, n), v in acc_de.items()
                if k == 'rm' and n <= int(n_max) for _, st in v.values()),
            sum(len(v) for (t, k, n), v in acc_de.items() if k == 'rm' and n <= int(n_max))),
        'accseed': lambda t, run, seed: acc[t, run][int(seed)],
        'accm': lambda t, run: statistics.mean(acc[t, run].values()),
        'first': lambda t, nd, *runs: rng([v[0]['kl'] for run in runs for v in run_pts(t, run).values()], int(nd)),
        'vd': lambda i: mean_sd(vrows[int(i)]['d']), 'vdm': lambda i: mean_sd(vrows[int(i)]['dm']),
        'vn': lambda i: f"{sum(x > 0 for x in vrows[int(i)]['d'])}/{len(vrows[int(i)]['d'])}",
        'vnm': lambda i: f"{sum(x > 0 for x in vrows[int(i)]['dm'])}/{len(vrows[int(i)]['dm'])}",
        'de': de, 'dem': lambda t, m, n: de(t, m, n)[0],
        'deacc': lambda t, kind, n: mean_sd([a for a, _ in acc_de[t, kind, int(n)].values()]),
        'deaccr': lambda t, kind, nd, *ns: rng([statistics.mean(a for a, _ in acc_de[t, kind, int(x)].values()) for x in ns], int(nd)),
        'acc': lambda t, run: mean_sd(list(acc[t, run].values())),
        'accr': lambda run, nd: rng([a for (t, r), v in acc.items() if r == run for a in v.values()], int(nd)),
        'accs': lambda t, run: ' / '.join(f'{a:.3f}' for a in (acc[t, run][s] for s in SEEDS if s in acc[t, run])),
    }


def main():
    rows = load()
    summ = summarise(rows)
    figs = [t for t in TASKS if plot(rows, t)]
    with open(os.path.join(RES, 'frontier_summary.json'), 'w') as f:
        json.dump(summ, f, indent=1)
    blocks = {'frontier': '\n\n'.join([''.join(f'![frontier {t}](results/frontier_{t}.png)\n' for t in figs),
                                        markdown(rows, summ), diffs_md(summ), verifier_md(),
                                        'Labels (`eval.py label --drop_ties --agreement 0.93`, on each seed\'s SFT '
                                        'samples):\n\n' + labels_md(), words_md(summ), examples_md(rows, summ)])}

    de_rows = load('data_efficiency')
    points = de_points(de_rows)
    tables = {t: de_table(points, t) for t in TASKS}
    figs = [t for t in TASKS if de_plot(points, t)]
    if points:
        with open(os.path.join(RES, 'data_efficiency_summary.json'), 'w') as f:
            json.dump({'points': {t: {m: {n: {s: {k: r[k] for k in ('name', 'gold_reward', 'kl')} for s, r in v.items()}
                                          for n, v in c.items()} for m, c in pc.items()} for t, pc in points.items()},
                       'multipliers': tables}, f, indent=1)
    blocks['data_efficiency'] = '\n\n'.join([''.join(f'![data efficiency {t}](results/data_efficiency_{t}.png)\n'
                                                      for t in figs), de_markdown(points, tables), de_diagnosis_md(de_rows)])
    blocks['data_efficiency_v2'] = de2_md(load('data_efficiency_v2'), tables)
    md = h5_best_of_n(de_rows)
    blocks['h5_bon'] = ''.join(f'![h5 best-of-n {t}](results/h5_best_of_n_{t}.png)\n' for t in TASKS
                               if os.path.exists(os.path.join(RES, f'h5_best_of_n_{t}.png'))) + '\n' + md

    hyp, size = rows + load('hypotheses'), load('size')  # size.py compares only its own runs (one machine)
    sources = {'frontier': rows, 'h2': [r for r in rows if r['run'] == 'bon' or r['run'].endswith('_b0.1')]}
    summaries = {'frontier': summ, 'h2': summarise(sources['h2'], ('rloo', 'dpo'))}
    of = {'size': [r for r in size if not r['run'].startswith('wide_')], 'size_wide': wide_rows(size)}
    for key, file, runs, methods, paper, pairs in HYPOTHESES:
        h = sources[key] = [r for r in of.get(key, hyp) if r['run'] in runs]
        summaries[key] = summarise(h, methods)
        blocks[key] = hypothesis_md(h, summaries[key], key, file, methods, paper, pairs)
    # the second pass at the frontier's N: its picks per budget (no curves, so no matched-KL column; bon gives SFT)
    de2 = load('data_efficiency_v2')
    summaries['de2'] = de2_summary(de2, 4000)
    sources['de2'] = [r for r in de2 if r['run'] == 'bon']
    blocks['h2'] = h2_md(rows)
    blocks['h1_end'] = h1_end_md(load('hypotheses'))
    vrows = verdict_rows(summaries, sources)
    blocks['size_reading'] = size_md(summaries, vrows)
    blocks['verdicts'] = verdict_md(summaries, sources, rows=vrows)
    blocks['budget_edge'] = budget_edge_md(rows, summaries['de2']).strip()
    blocks['ablations'] = ablations_md(rows)
    blocks['performance'] = performance_md()

    ctx = {**facts(rows, summaries, sources, vrows, points, de_rows), **de_facts(points, tables, de_rows),
           **de2_facts(load('data_efficiency_v2')),
           **theory_facts(), **other_facts()}
    blocks.update(demo=demo_md(), h5_demo=h5_demo_md(), theory=theory_md())
    write_atomic(REPORT, fill_markers(fill(open(TEMPLATE).read(), ctx), blocks))
    readme = os.path.join(ROOT, 'README.md')
    text = open(readme).read()  # only its marker blocks, where it has them
    new = fill_markers(text, {'headline': headline_md(rows, summ, summaries['de2']), 'costs': costs_md(), 'study_costs': study_costs_md(),
                              'performance': blocks['performance']})
    if new != text:
        write_atomic(readme, new)
    print(f'wrote {os.path.relpath(REPORT, ROOT)}')


def hypothesis_md(rows, summ, key, file, methods, paper, pairs):
    """A hypothesis's runs on the frontier's protocol: a figure per task that has its new method, the budget
    table and paired differences; the numbers per seed in results/<key>_summary.json."""
    new = list(methods)[-1]
    figs = [t for t in TASKS if any(r['method'] == new for r in rows if r['task'] == t) and plot(rows, t, methods, file)]
    if not figs:
        return ''
    with open(os.path.join(RES, f'{key}_summary.json'), 'w') as f:
        json.dump(summ, f, indent=1)
    shown = {t: v for t, v in summ.items() if t in figs}
    return '\n\n'.join([''.join(f'![{key} {t}](results/{file}_{t}.png)\n' for t in figs),
                        markdown(rows, shown, methods, paper), diffs_md(shown, pairs, methods)])


if __name__ == '__main__':
    main()
