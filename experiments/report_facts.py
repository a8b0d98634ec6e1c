"""
The template's fields: every value REPORT.md's prose quotes, computed from the records; and the exact theory's table.
"""
import json
import os
import re
import statistics

import data_efficiency_v2 as DE2
import report_common as C
from report_common import METHODS, SEEDS, load, mean_sd, paired, room, seeds_of, sft_row, t_interval_md
from report_costs import gpu_record
from report_data_efficiency import de_table, mult_cell
from report_data_efficiency_v2 import de2_points, de2_summary, de2_verifiers
from report_frontier import verifier_acc
from report_hypotheses import h5_verifier_acc
from report_verdicts import counts, matched_sentence, per_prompt


def theory_md(key='H3_cv'):
    """Claim 3's table: KL(pi || pi*) of RM-then-RL and of DPO per number of pairs, mean ± sd over the worlds."""
    t = json.load(open(os.path.join(C.RES, 'theory.json')))['claim_3'][key]
    cell = lambda v: '{:.{nd}f} ± {:.{nd}f}'.format(*v, nd=3 if v[0] >= 0.005 else 4)  # noqa: E731
    L = ['| pairs | RM (linear) then RL | offline DPO | RM better |', '|---|---|---|---|']
    for n, v in t.items():
        L.append(f"| {n} | {cell(v['rm_then_rl/kl_pi_pistar'])} | {cell(v['dpo/kl_pi_pistar'])} | "
                 f"{v['rm_wins_kl_pi_pistar']}/{v['seeds']} |")
    return '\n'.join(L)


def jf(file, path=''):
    """A value in results/<file> (JSON), path 'a:b:0' (keys, or list indices)."""
    v = json.load(open(os.path.join(C.RES, file)))
    for k in filter(None, path.split(':')):
        v = v[int(k)] if isinstance(v, list) else v[k]
    return v


def jsonl(file):
    return [json.loads(line) for line in open(os.path.join(C.RES, file))]


def theory_facts():
    """Claims 1-2: the largest gaps where the optimum is unique (two DPO starts meet) and, where it is a set, the
    largest residual of the set claims; claim 3: the largest n at which DPO is ahead at a fixed ridge."""
    d = json.load(open(os.path.join(C.RES, 'theory.json')))
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


def other_facts():
    """Fields from single records: the lr sweeps, logs, labels, in_place, bench, side_by_side."""
    last = lambda file, field: jsonl(file)[-1][field]  # noqa: E731

    def klfrom(file, budget):  # the first step from which every val snapshot of a run is past the budget
        snaps = sorted((r['step'], r['kl']) for r in jsonl(file) if r['step'] is not None)
        over = [st for i, (st, _) in enumerate(snaps) if all(k > float(budget) for _, k in snaps[i:])]
        return over[0]

    def epochs_done(name):  # results/sweeps/<name>: its last logged step as a share of its planned epochs
        cfg = jf(f'sweeps/{name}.config.json')
        return last(f'sweeps/{name}.log.jsonl', 'step') / cfg['max_iters'] * cfg['epochs']
    sbs = [float(x) for x in re.findall(r'ratio ([\d.]+)', open(os.path.join(C.RES, 'side_by_side.txt')).read())]
    return {
        'jf': lambda file, path='': jf(file, path), 'last': last, 'klfrom': klfrom, 'epochs_done': epochs_done,
        'lastmean': lambda file, field, k: statistics.mean(r[field] for r in jsonl(file)[-int(k):]),
        'logat': lambda file, step, field: next(r[field] for r in jsonl(file) if r['step'] == int(step)),
        'seedlast': lambda d, name, field, nd: ' / '.join(f"{last(f'{d}/seed{s}_{name}.jsonl', field):.{int(nd)}f}"
                                                         for s in SEEDS),
        'taus': lambda prefix, nd: ' / '.join(f"{jf(f'{prefix}_seed{s}.json', 'tau'):.{int(nd)}f}" for s in SEEDS),
        'sbs': f'{min(sbs):.2f}-{max(sbs):.2f}', 'sbsmed': statistics.median(sbs),
        'gpu_name': (gpu_record('data_efficiency') or {'name': 'GPU'})['name'],
        'logitdiff': max(r['max_logit_diff'] for r in jf('bench.json', 'results').values()),
    }


def facts(rows, summaries, sources, vrows, h5_rows):
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
    acc_h5, acc_de2 = h5_verifier_acc(), de2_verifiers()
    acc = verifier_acc()
    n = counts(rows)
    timed = [line.rstrip('\n').split('\t') for line in open(os.path.join(C.RES, 'frontier', 'timings.tsv'))]
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
        'pickstep': lambda src, t, m, b, seed: int(summaries[src][t][m][int(b)][int(seed)]['name'].rsplit('_', 1)[1]),
        'per_prompt': per_prompt(rows, {'every trained policy': [m for m in METHODS if m != 'best_of_n']}),
        'pick': lambda src, t, m, b, seed, field: summaries[src][t][m][int(b)][int(seed)][field],
        'word': lambda src, t, m, b, seed, w: dict(summaries[src][t][m][int(b)][int(seed)]['top_words'])[w],
        'sft': lambda t, field: statistics.mean(sft_row([r for r in rows if r['task'] == t and r['seed'] == s and
                                                         r['split'] == 'test'])[field] for s in seeds_of(rows, t)),
        'sftseed': lambda t, seed, field: sft_row([r for r in rows if r['task'] == t and r['seed'] == int(seed) and
                                                   r['split'] == 'test'])[field],
        'vpm': lambda i: vrows[int(i)]['got_m'],
        'bon': lambda t, rk, n: mean_sd([r['gold_reward'] for r in h5_rows if r['task'] == t and r['split'] == 'test'
                                         and r['method'] == 'best_of_n' and r['best_of'] == int(n)
                                         and os.path.basename(r['rm'] or '') == rk]),
        'de2acc': lambda t, kind, n: (lambda v: f'{statistics.mean(a for a, _ in v.values()):.3f} ({len(v)} of 3 seeds)'
                                      if v else 'not yet run')(acc_de2.get((t, int(n)), {}).get(kind)),
        'accm': lambda t, run: statistics.mean(acc[t, run].values()),
        'first': lambda t, nd, *runs: rng([v[0]['kl'] for run in runs for v in run_pts(t, run).values()], int(nd)),
        'vd': lambda i: mean_sd(vrows[int(i)]['d']), 'vdm': lambda i: mean_sd(vrows[int(i)]['dm']),
        'vn': lambda i: f"{sum(x > 0 for x in vrows[int(i)]['d'])}/{len(vrows[int(i)]['d'])}",
        'vnm': lambda i: f"{sum(x > 0 for x in vrows[int(i)]['dm'])}/{len(vrows[int(i)]['dm'])}",
        'h5acc': lambda t, kind, n: mean_sd([a for a, _ in acc_h5[t, kind, int(n)].values()]),
        'h5steps': lambda t, kind, n: '{} of {}'.format('/'.join(str(acc_h5[t, kind, int(n)][s][1]) for s in SEEDS),
                                                    jsonl(f'h5_best_of_n/logs/seed{SEEDS[0]}_{t}_{kind}_n{n}.jsonl')[-1]['step']),
        'accr': lambda run, nd: rng([a for (t, r), v in acc.items() if r == run for a in v.values()], int(nd)),
        'accs': lambda t, run: ' / '.join(f'{a:.3f}' for a in (acc[t, run][s] for s in SEEDS if s in acc[t, run])),
    }
