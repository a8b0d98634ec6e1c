"""
Data efficiency: gold reward at a fixed KL budget against the number of preference pairs, per method, so that
one can read off how many more pairs offline DPO needs to reach what RM + RL reaches (the paper's H6 as a curve).
Driven by the stage commands, with the frontier's runner (experiments/frontier.py):

  python experiments/data_efficiency.py                # everything not yet done, two one-thread jobs side by side
  python experiments/data_efficiency.py --hours 1.8    # start no new job after 1.8 hours (then run it again)
  python experiments/data_efficiency.py --dry          # list the jobs still to do and their commands

Per (task, seed): one labelled set of 8000 untied train pairs and 500 val pairs, from the seed's SFT (the frontier's
SFT and labeller settings: ties dropped, tau set for 93% agreement on all 8000). For N = 250 ... 8000 the stages
train on the first N pairs (--n_pairs N), so a larger N only adds pairs. At each N, one setting per method:
  RM          train_rm.py, 2 epochs but at least 250 steps, ending at its best val preference likelihood (--keep_best)
  DPO         beta 0.1, lr 3e-4, 3 epochs but at least 375 steps (the frontier's 3 epochs of 4000), 6 snapshots
  RLOO        against that RM, beta 0.1, 200 steps, a snapshot every 25 (the frontier's)
  online DPO  from the SFT sampler (the frontier's only online DPO inside 10 nats), beta 0.1, 3 rounds of 500
              prompts, a snapshot every 8 steps
  best-of-N   64 SFT samples per prompt, reranked by every N's RM (one sampling per split), n = 1, 2, 4, ..., 64;
              the same samples are also reranked by every N's final DPO policy (its implicit reward), for H5
Beta 0.1 is the frontier's choice for RLOO at every task and seed and for DPO on sentiment at the 10-nat budget.
The floors on steps keep small N from meaning a few dozen steps: a longer run only adds snapshots to choose from.

The protocol: the KL budget is 10 nats per completion, the frontier's middle budget and the smallest at which
every trained method has snapshots inside it. For each method and N, the candidate with the highest mean gold
reward on the val prompts among its snapshots (or n, for best-of-N) and SFT itself with val KL at most 10 is
chosen; only that one is scored on the test prompts. experiments/report.py draws the curves and the multiplier.
Records: results/data_efficiency/<task>_seed<seed>_<method>_n<N>_<split>.jsonl (best-of-N: _bon_<split>).
"""
import json
import math
import os

import frontier as F  # the runner, the seeds, the tasks and the SFT runs

OUT, RES = 'out/data_efficiency', 'results/data_efficiency'
NS = (250, 500, 1000, 2000, 4000, 8000)
BUDGET = 10
BETA, LR = 0.1, 3e-4
PAIRS = f'--n_pairs {max(NS)} --n_val 500 --drop_ties --max_per_prompt 10 --agreement 0.93'
SCORE = '--samples 2'


def jobs():
    """(name, dependencies, command, records or None) in the order they are wanted: seed-major, every N of a
    (task, seed) before the next."""
    out = [(f'{F.OUT}/seed{seed}/sft', [], f'python train_mle.py --loss sft --seed {seed} --no_tqdm', None)
           for seed in F.SEEDS]
    for seed in F.SEEDS:
        for task in F.TASKS:
            sft, t = f'{F.OUT}/seed{seed}/sft', f'{OUT}/seed{seed}/{task}'
            prefs, common = f'{t}/prefs.pt', f'--seed {seed} --no_tqdm --snapshots'
            out.append((f'{t}/label', [sft], f'python eval.py label --policy {sft} --task {task} --seed {seed} '
                        f'{PAIRS} --out {prefs} --json {RES}/labels_{task}_seed{seed}.json', None))
            for n in NS:
                out.append((f'{t}/rm_n{n}', [f'{t}/label'], f'python train_rm.py --prefs {prefs} --n_pairs {n} '
                            f'--init {sft} --max_iters {max(250, math.ceil(2 * n / 32))} --keep_best {common}', None))
            rewards = [f'{t}/rm_n{n}' for n in NS] + [f'{t}/dpo_n{n}' for n in NS]
            rms = ' '.join(rewards)
            for split in ('val', 'test'):
                out.append((f'{t}/score_bon_{split}', rewards,
                            f'python eval.py score --ref {sft} --task {task} --split {split} --seed {seed} {SCORE} '
                            f'{sft} --best_of 64 --rm {rms}', (task, seed, 'bon', split)))
            for n in NS:
                dpo_steps = max(375, math.ceil(3 * n / 32))
                runs = {
                    f'dpo_n{n}': ([f'{t}/label'], f'python train_mle.py --loss dpo --prefs {prefs} --n_pairs {n} '
                                  f'--ref {sft} --beta {BETA} --lr {LR} --max_iters {dpo_steps} '
                                  f'--eval_interval {dpo_steps // 6} {common}'),
                    f'rloo_n{n}': ([f'{t}/rm_n{n}'], f'python train_rl.py --algo rloo --reward {t}/rm_n{n} --init {sft} '
                                   f'--beta {BETA} --max_iters 200 --eval_interval 25 {common}'),
                    f'odpo_sft_n{n}': ([f'{t}/rm_n{n}'], f'python train_rl.py --algo online_dpo --init {sft} '
                                       f'--reward {t}/rm_n{n} --ref {sft} --beta {BETA} --lr {LR} --rounds 3 '
                                       f'--n_prompts 500 --eval_interval 8 {common}')}
                for run, (deps, cmd) in runs.items():
                    score = f'python eval.py score --ref {sft} --task {task} --seed {seed} {SCORE}'
                    out += [(f'{t}/{run}', deps, cmd, None),
                            (f'{t}/score_{run}_val', [f'{t}/{run}'], f'{score} --split val SNAPSHOTS:{t}/{run}',
                             (task, seed, run, 'val')),
                            (f'{t}/score_{run}_test', [f'{t}/score_{run}_val', f'{t}/score_bon_val'],
                             f'{score} --split test CHOSEN:{task}:{seed}:{run}', (task, seed, run, 'test'))]
    return out


def read(task, seed, run, split, res=RES):
    with open(F.record_path(res, task, seed, run, split)) as f:
        return [json.loads(line) for line in f]


def choose(val_rows, sft_row, budget=BUDGET):
    """The protocol: the candidate (SFT included) with the best val gold reward among those within the budget."""
    trained = [r for r in val_rows if r['method'] != 'human' and r['kl'] <= budget]  # human rows have no KL
    return max(trained + [sft_row], key=lambda r: r['gold_reward'])


def first_pass_pick(task, seed, run):
    """The val record that CHOSEN:task:seed:run names in this pass: the run's val-best within the budget."""
    sft = next(r for r in read(task, int(seed), 'bon', 'val') if r['best_of'] == 1)
    return choose(read(task, int(seed), run, 'val'), sft)


def resolve(cmd, pick=first_pass_pick):
    """CHOSEN:<fields> becomes the checkpoint of the val record pick(*fields) (each pass has its own fields)."""
    if 'CHOSEN:' not in cmd:
        return cmd
    spec = cmd.split('CHOSEN:')[1].split()[0]
    path = pick(*spec.split(':'))['path']
    if not os.path.exists(path):  # a retrained run would not be the one its val records chose from
        raise ValueError(f"{path} is gone: delete the val records it was chosen from ({spec}) to redo the run")
    return cmd.replace(f'CHOSEN:{spec}', path)


if __name__ == '__main__':
    os.chdir(F.ROOT)
    F.main(jobs(), RES, __doc__, resolve)
