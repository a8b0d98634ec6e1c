"""
Reading a sweep's records and choosing its test checkpoints on val, shared by the data-efficiency pass
(experiments/data_efficiency_v2.py) and the KL axis (experiments/frontier_v3.py).

This file ran the first data-efficiency pass, retired since (its confounded protocol is summed up in
data_efficiency_v2.py's docstring): its job list and its records left the tree (git history keeps them), except its
timings and GPU machine record (results/retired/, counted in README's study costs) and the best-of-64 records that
H5's best-of-N reading needs (results/h5_best_of_n/). The second pass makes its own pairs from the frontier's SFT
and reuses nothing else of it; what it uses from here is below.
"""
import json
import os

import frontier as F  # the record paths


def read(task, seed, run, split, res):
    with open(F.record_path(res, task, seed, run, split)) as f:
        return [json.loads(line) for line in f]


def choose(val_rows, sft_row, budget):
    """The protocol: the candidate (SFT included) with the best val gold reward among those within the budget."""
    trained = [r for r in val_rows if r['method'] != 'human' and r['kl'] <= budget]  # human rows have no KL
    return max(trained + [sft_row], key=lambda r: r['gold_reward'])


def resolve(cmd, pick):
    """CHOSEN:<fields> becomes the checkpoint of the val record pick(*fields) (each sweep has its own fields)."""
    if 'CHOSEN:' not in cmd:
        return cmd
    spec = cmd.split('CHOSEN:')[1].split()[0]
    path = pick(*spec.split(':'))['path']
    if not os.path.exists(path):  # a retrained run would not be the one its val records chose from
        raise ValueError(f"{path} is gone: delete the val records it was chosen from ({spec}) to redo the run")
    return cmd.replace(f'CHOSEN:{spec}', path)
