"""
The paper's hypotheses as experiments on the frontier's protocol (experiments/frontier.py: its SFT, pairs, RM and
DPO runs are reused, and rerun if missing). So far:

  H1, the isomorphism at scale: RLOO against DPO's implicit reward beta * log(pi_dpo / pi_ref) (the local reward
  class with its reference subtracted; fitting it to the pairs is exactly DPO, so the frontier's dpo_b0.1 run is
  that reward). With the same beta the RL objective's optimum is the DPO policy itself, so the theorem predicts
  this curve lands on DPO's; the paper's story predicts RLOO against the global RM lands above both on sentiment.
  Same RLOO settings as the frontier's rloo_b0.1 (200 steps, a snapshot every 25), every snapshot scored on val
  and test.

  python experiments/hypotheses.py [--hours 1.8] [--dry]

Records: results/hypotheses/<task>_seed<seed>_<run>_<split>.jsonl, the frontier's record format;
experiments/report.py draws them with the frontier's DPO and RLOO curves.
"""
import os

import frontier as F

RES = 'results/hypotheses'


def jobs():
    """The frontier's jobs that these depend on (skipped when done), then H1's, seed-major."""
    frontier = {name: job for name, *job in F.jobs()}
    h1 = []
    for seed in F.SEEDS:
        for task in F.TASKS:
            t, sft = f'{F.OUT}/seed{seed}/{task}', f'{F.OUT}/seed{seed}/sft'
            run = f'{t}/rloo_local_b0.1'
            h1 += [(run, [f'{t}/dpo_b0.1'], f'python train_rl.py --algo rloo --reward {t}/dpo_b0.1 --init {sft} '
                    f'--beta 0.1 --max_iters 200 --eval_interval 25 --seed {seed} --no_tqdm --snapshots', None)]
            h1 += [(f'{t}/score_rloo_local_b0.1_{split}', [run], f'python eval.py score --ref {sft} --task {task} '
                    f'--split {split} --seed {seed} {F.SCORE} SNAPSHOTS:{run}', (task, seed, 'rloo_local_b0.1', split))
                   for split in ('val', 'test')]
    todo, wanted = [d for _, deps, _, _ in h1 for d in deps], set()
    while todo:  # every frontier job these need, and what those need
        name = todo.pop()
        if name in frontier and name not in wanted:
            wanted.add(name)
            todo += frontier[name][0]
    return [(name, *job) for name, job in frontier.items() if name in wanted and job[2] is None] + h1


if __name__ == '__main__':
    os.chdir(F.ROOT)
    F.main(jobs(), RES, __doc__)
