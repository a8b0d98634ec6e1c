"""
The hypotheses: H1, H3, H4 and RM size against policy size on the frontier's protocol (HYPOTHESES), H2 from the
frontier's records, H5 by best-of-N, H1 run to its end, and the size study's reading.
"""
import glob
import json
import os
import re
import statistics

import report_common as C
from report_common import (SEEDS, TASKS, diff_cell, diff_md, diffs_md, load, markdown, mean_sd, paired, pattern,
                           plot, plot_seeds, plt, pm, save_fig, summarise)
from report_costs import timings
from report_frontier import verifier_md

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


def hypothesis_md(rows, summ, key, file, methods, paper, pairs):
    """A hypothesis's runs on the frontier's protocol: a figure per task that has its new method, the budget
    table and paired differences; the numbers per seed in results/<key>_summary.json."""
    new = list(methods)[-1]
    figs = [t for t in TASKS if any(r['method'] == new for r in rows if r['task'] == t) and plot(rows, t, methods, file)]
    if not figs:
        return ''
    with open(os.path.join(C.RES, f'{key}_summary.json'), 'w') as f:
        json.dump(summ, f, indent=1)
    shown = {t: v for t, v in summ.items() if t in figs}
    return '\n\n'.join([''.join(f'![{key} {t}](results/{file}_{t}.png)\n' for t in figs),
                        markdown(rows, shown, methods, paper), diffs_md(shown, pairs, methods)])


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


H5_RERANKERS = {'rm_n500': 'RM, 500 pairs', 'rm_n4000': 'RM, 4000 pairs', 'dpo_n500': "DPO's implicit reward, 500 pairs",
                'dpo_n4000': "DPO's implicit reward, 4000 pairs"}


def h5_best_of_n(rows, shown=(1, 4, 16, 64)):
    """H5 with best-of-N: the test gold reward of the best of n SFT samples (the same samples for every reranker)
    picked by each verifier of the first data-efficiency pass (its records in results/h5_best_of_n/), against n; a
    figure per task and a table."""
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


def h5_verifier_acc():
    """{(task, verifier, N): {seed: (held-out accuracy, step)}} of H5's rerankers, from their training logs
    (results/h5_best_of_n/logs/): each N's RM at the step it kept (its best val preference log-likelihood,
    --keep_best) and each N's DPO implicit reward at the end of training, on the 500 untied val pairs."""
    acc = {}
    for path in glob.glob(os.path.join(C.RES, 'h5_best_of_n', 'logs', 'seed*_*_*_n*.jsonl')):
        m = re.fullmatch(r'seed(\d+)_([a-z]+)_(rm|dpo)_n(\d+)\.jsonl', os.path.basename(path))
        if not m:  # a reranker's log only
            continue
        seed, task, kind, n = m.groups()
        ev = [r for r in map(json.loads, open(path)) if 'val_pref_acc' in r]
        r = max(ev, key=lambda r: r['val_pref_loglik']) if kind == 'rm' else ev[-1]
        acc.setdefault((task, kind, int(n)), {})[int(seed)] = (r['val_pref_acc'], r['step'])
    return acc


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
    fig.savefig(os.path.join(C.RES, 'h1_to_its_end.png'), dpi=120)
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
        L.append(f"`python experiments/size.py` is running: seeds with every run scored on test so far: SFT-sized "
                 f"{len(done['size'])}, wide {len(done['size_wide'])} of {len(SEEDS)}.")
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
