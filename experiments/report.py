"""
Every figure and table of the studies, from the records in results/ alone (no checkpoint is read):

  python experiments/report.py

writes REPORT.md from experiments/report_template.md (its fields and marker blocks), README.md's marker blocks, and
the figures and per-seed summaries beside the records: for the frontier results/frontier_<task>.png (gold reward
against KL to SFT on the test prompts) and results/frontier_summary.json (every number of its tables, per seed).

The protocol, fixed before any test number was looked at: for a KL budget B (3, 10 and 30 nats per completion),
each method's candidates are all its checkpoints (both strengths, every snapshot) and SFT itself (KL 0, the
start of every curve); the one with the highest mean gold reward on the val prompts among those whose val KL is
at most B is chosen, and its test numbers are reported, mean and standard deviation over the three seeds.

The parts live by study in experiments/report_*.py (report_common: what they share); main() here puts them together.
"""
import json
import os

import report_common as C
from report_common import (TASKS, diffs_md, fill, fill_markers, load, markdown, plot, summarise,
                           with_new_methods, write_atomic)
from report_common import choose  # noqa: F401  (tests/test_frontier.py reads report.choose)
from report_costs import SWEEPS, costs_md, performance_md, study_costs_md
from report_data_efficiency_v2 import de2_md, de2_summary
from report_facts import de2_facts, facts, other_facts, theory_facts, theory_md
from report_frontier import ablations_md, examples_md, labels_md, verifier_md, words_md
from report_hypotheses import HYPOTHESES, h1_end_md, h2_md, h5_best_of_n, hypothesis_md, size_md, wide_rows
from report_verdicts import AXIS, budget_edge_md, verdict_axis_md, verdict_md, verdict_rows
import report_axis

TEMPLATE = os.path.join(C.ROOT, 'experiments', 'report_template.md')
REPORT = os.path.join(C.ROOT, 'REPORT.md')


def main():
    rows = load()
    methods = with_new_methods(rows)
    summ = summarise(rows, methods)
    figs = [t for t in TASKS if plot(rows, t, methods)]
    with open(os.path.join(C.RES, 'frontier_summary.json'), 'w') as f:
        json.dump(summ, f, indent=1)
    blocks = {'frontier': '\n\n'.join([''.join(f'![frontier {t}](results/frontier_{t}.png)\n' for t in figs),
                                        markdown(rows, summ, methods), diffs_md(summ), verifier_md(),
                                        'Labels (`eval.py label --drop_ties --agreement 0.93`, on each seed\'s SFT '
                                        'samples):\n\n' + labels_md(), words_md(summ), examples_md(rows, summ)])}

    blocks['data_efficiency_v2'] = de2_md(load('data_efficiency_v2'))
    h5_rows = load('h5_best_of_n')
    md = h5_best_of_n(h5_rows)
    blocks['h5_bon'] = ''.join(f'![h5 best-of-n {t}](results/h5_best_of_n_{t}.png)\n' for t in TASKS
                               if os.path.exists(os.path.join(C.RES, f'h5_best_of_n_{t}.png'))) + '\n' + md

    hyp, size = rows + load('hypotheses'), load('size')  # size.py compares only its own runs (one machine)
    sources = {'frontier': rows, 'h2': [r for r in rows if r['run'] == 'bon' or r['run'].endswith('_b0.1')]}
    summaries = {'frontier': summ, 'h2': summarise(sources['h2'], ('rloo', 'dpo'))}
    of = {'size': [r for r in size if not r['run'].startswith('wide_')], 'size_wide': wide_rows(size)}
    methods_of = {'frontier': methods, 'h2': ('rloo', 'dpo')}
    for key, file, runs, methods, paper, pairs in HYPOTHESES:
        methods_of[key] = methods
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
    axis = {key: summarise(sources[key], methods, AXIS) for key, methods in methods_of.items()}
    blocks['verdicts_axis'] = verdict_axis_md({**axis, 'de2': summaries['de2']}, sources)
    axis_rows = report_axis.load()
    blocks['axis'] = report_axis.axis_md(axis_rows).strip()
    blocks['own_words'] = '\n'.join(report_axis.own_words_md(axis_rows, budget=b) for b in (6, 20)).strip()
    blocks['short_words'] = report_axis.short_md(rows).strip()
    blocks['short_picks'] = report_axis.short_picks_md(axis_rows).strip() or 'No `short` block is complete yet.'
    blocks['ablations'] = ablations_md(rows)
    blocks['ablations_v3'] = report_axis.ablations_md(axis_rows).strip() or 'None yet.'
    blocks['performance'] = performance_md()

    axis_summary = report_axis.summary(axis_rows)
    ctx = {**facts(rows, summaries, sources, vrows, h5_rows), **de2_facts(load('data_efficiency_v2')),
           **theory_facts(), **other_facts(), 'axis': lambda task: report_axis.reading(axis_summary, task)}
    blocks['theory'] = theory_md()
    write_atomic(REPORT, fill_markers(fill(open(TEMPLATE).read(), ctx), blocks))
    readme = os.path.join(C.ROOT, 'README.md')
    text = open(readme).read()  # only its marker blocks, where it has them
    new = fill_markers(text, {'headline': report_axis.headline_md(axis_summary, axis_rows).strip(),
                              'own_words': report_axis.own_words_md(axis_rows, budget=20).strip(),
                              'short_line': report_axis.short_line(rows) + '.', 'costs': costs_md(),
                              'study_costs': study_costs_md({**SWEEPS, 'frontier_v3': f"{SWEEPS['frontier_v3']} "
                                                                              f"({report_axis.progress(axis_rows)})"}),
                              'performance': blocks['performance']})
    if new != text:
        write_atomic(readme, new)
    print(f'wrote {os.path.relpath(REPORT, C.ROOT)}')


if __name__ == '__main__':
    main()
