"""
The frontier's blocks beside its table: how well each verifier ranks held-out pairs, the labels, what the chosen
policies write, sample completions; and the ablations drawn over its curves.
"""
import glob
import json
import os
import re

import report_common as C
from report_common import METHODS, SEEDS, TASKS, diffs_md, load, markdown, plot, sft_row, summarise


def verifier_acc(sweep='frontier'):
    """{(task, run): {seed: held-out accuracy}} (the 500 untied val pairs) at the end of training: the global RMs
    and the implicit reward beta log(pi/pi_ref) of each DPO run, from one sweep's training logs (sweeps that ran
    on different machines trained different verifiers from the same commands)."""
    acc = {}
    for path in glob.glob(os.path.join(C.RES, sweep, 'logs', 'seed*_*_*.jsonl')):
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
    for path in sorted(glob.glob(os.path.join(C.RES, 'frontier', 'labels_*.json'))):
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


# Ablations: a method at a new setting, against the frontier's curves of the same task and seeds. Contract: the
# records in results/ablations/<NAME>/*.jsonl, named and shaped as results/frontier/*.jsonl, with 'method' == NAME
# (not one of METHODS) and 'setting' a free string (e.g. '--beta 0.3'); only the frontier's seeds are read.

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
    with open(os.path.join(C.RES, 'ablations', name, 'summary.json'), 'w') as f:  # the frontier's own are in frontier_summary.json
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
        logs = sorted(glob.glob(os.path.join(C.RES, 'ablations', '*', 'logs', f'seed{seed}_sft.jsonl')))
        if not logs:
            continue
        a, b = (json.loads(open(p).readlines()[-1]) for p in (logs[0], os.path.join(C.RES, 'frontier', 'logs', f'seed{seed}_sft.jsonl')))
        same = a['val_loss'] == b['val_loss'] and a['step'] == b['step']
        labels = [os.path.join(d, f'labels_{task}_seed{seed}.json') for d in (os.path.dirname(os.path.dirname(logs[0])),
                                                                              os.path.join(C.RES, 'frontier'))]
        tau = ' and '.join(f"{json.load(open(p))['tau']:.4f}" if os.path.exists(p) else '(not recorded)' for p in labels)
        out.append(f"The SFT of seed {seed} was rebuilt for an ablation with the frontier's command "
                   f"(`{os.path.relpath(logs[0], C.ROOT)}`): final val loss {a['val_loss']:.4f} against the frontier's "
                   f"{b['val_loss']:.4f}, labeller tau {tau} (rebuilt, frontier). " +
                   ("It is the frontier's SFT, bit for bit." if same else
                    "It is not the frontier's SFT bit for bit (today's command does not rebuild it exactly), so this curve starts from another SFT and other pairs than the frontier curves it is "
                    "drawn over; an ablation of the frontier's own command on the same rebuild (`--flags ''`) "
                    "measures what that changes."))
    return out


def ablations_md(frontier_rows):
    names = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(C.RES, 'ablations', '*', '')))
    md = [m for m in (ablation_md(frontier_rows, n) for n in names) if m]
    return '\n\n'.join(md) if md else 'None yet: `results/ablations/` holds no records.'
