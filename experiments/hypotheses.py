"""
The paper's hypotheses as experiments on the frontier's protocol (experiments/frontier.py: its SFT, pairs, RM and
DPO runs are reused, and rerun if missing). So far:

  H1, the isomorphism at scale: RLOO against DPO's implicit reward beta * log(pi_dpo / pi_ref) (the local reward
  class with its reference subtracted; fitting it to the pairs is exactly DPO, so the frontier's dpo_b0.1 run is
  that reward). With the same beta the RL objective's optimum is the DPO policy itself, so the theorem predicts
  this curve lands on DPO's; the paper's story predicts RLOO against the global RM lands above both on sentiment.
  Same RLOO settings as the frontier's rloo_b0.1 (200 steps, a snapshot every 25), every snapshot scored on val
  and test. On sentiment DPO's curve has no checkpoint between about 8 and 11 nats, where RLOO's lands, so the
  frontier's dpo_b0.1 is run again with a snapshot every 21 steps (1/6 epoch) instead of 63: the same run (a
  batch is a function of seed and step), seen three times as often.

  H1 to its end: that run stops at 9-10 nats, short of the DPO policy it should reach (13 nats on sentiment). The
  same RLOO for 1000 steps (the cosine schedule stretched, a snapshot every 50), on sentiment, its snapshots
  scored on the test prompts twice: against SFT (the frontier's KL and gold) and against the DPO policy itself
  (--ref: KL(pi_RL || pi_DPO) on the RL policy's samples); the DPO policy is scored beside them, so the gold gap to
  it is on the same prompts and seed. The theorem predicts both go to about zero. It ran later than the rest, on
  another machine (stages are bitwise reproducible per machine only), so its SFT, pairs and DPO policy were
  retrained there and it is compared only with itself; their logs and label statistics are in results/hypotheses/.

  H4, narrow (on-policy) data: every pair here is two SFT samples. The contrast: pairs of the same first SFT
  sample and the prompt's human continuation (eval.py label --pair human: off-policy), labelled and counted as
  the frontier's (4000 untied, tau for 93% agreement), then DPO exactly as the frontier's dpo_b0.1; its curve is
  compared with the frontier's on-policy DPO.

  H3, more epochs for offline, on sentiment (the one task with a gap to close): DPO as the frontier's dpo_b0.1 but
  6 and 12 epochs (the cosine schedule stretched), a snapshot every half epoch as in the 3-epoch run (12 and 24
  snapshots: fewer, evenly spread, left the longer runs no checkpoint inside 10 nats), against the 3-epoch run,
  online DPO and RLOO at beta 0.1. (More pairs: data_efficiency.py.)

  python experiments/hypotheses.py [--hours 1.8] [--dry]

Records: results/hypotheses/<task>_seed<seed>_<run>_<split>.jsonl, the frontier's record format;
experiments/report.py draws them with the frontier's DPO and RLOO curves.
"""
import os

import frontier as F

RES = 'results/hypotheses'


def scored(t, task, seed, sft, name, deps, cmd):
    """A training run and the scoring of its snapshots on val and test."""
    return [(f'{t}/{name}', deps, cmd, None)] + [
        (f'{t}/score_{name}_{split}', [f'{t}/{name}'], f'python eval.py score --ref {sft} --task {task} --split {split} '
         f'--seed {seed} {F.SCORE} SNAPSHOTS:{t}/{name}', (task, seed, name, split)) for split in ('val', 'test')]


def rloo(seed, lr=F.LR, every=25, steps=200):
    """The frontier's RLOO at beta 0.1 (200 steps); the reward and the policy to start from are added."""
    return (f'python train_rl.py --algo rloo --beta 0.1 --lr {lr} --max_iters {steps} --eval_interval {every} '
            f'--seed {seed} --no_tqdm --snapshots')


def dpo(seed, prefs, ref, lr=F.LR, epochs=3, every=63):
    """The frontier's DPO at beta 0.1 (a snapshot every half epoch of 3 by default) on the given pairs and reference."""
    return (f'python train_mle.py --loss dpo --prefs {prefs} --ref {ref} --beta 0.1 --lr {lr} --epochs {epochs} '
            f'--eval_interval {every} --seed {seed} --no_tqdm --snapshots')


def jobs():
    """The frontier's jobs that these depend on (skipped when done), then H1's, H4's, H3's and H1 to its end, each
    seed-major."""
    h1, h4, h3, h1_end = [], [], [], []
    for seed in F.SEEDS:
        for task in F.TASKS:
            t, sft = f'{F.OUT}/seed{seed}/{task}', f'{F.OUT}/seed{seed}/sft'
            h1 += scored(t, task, seed, sft, 'rloo_local_b0.1', [f'{t}/dpo_b0.1'], f'{rloo(seed)} --reward {t}/dpo_b0.1 '
                         f'--init {sft}')
            if task == 'sentiment':
                h1 += scored(t, task, seed, sft, 'dpo_dense_b0.1', [f'{t}/label'], dpo(seed, f'{t}/prefs.pt', sft,
                                                                                      every=21))
                run, dpo_policy = f'{t}/rloo_local_long_b0.1', f'{t}/dpo_b0.1'
                h1_end.append((run, [dpo_policy], f'{rloo(seed, every=50, steps=1000)} --reward {dpo_policy} --init {sft}',
                               None))
                for ref, name in ((sft, 'rloo_local_long_b0.1'), (dpo_policy, 'rloo_local_long_vs_dpo_b0.1')):
                    h1_end.append((f'{t}/score_{name}_test', [run], f'python eval.py score --ref {ref} --task {task} '
                                   f'--split test --seed {seed} {F.SCORE} {dpo_policy} SNAPSHOTS:{run}',
                                   (task, seed, name, 'test')))
            h4.append((f'{t}/label_human', [sft], f'python eval.py label --policy {sft} --task {task} --seed {seed} '
                       f'{F.PAIRS} --pair human --out {t}/prefs_human.pt --json {RES}/labels_human_{task}_seed{seed}.json',
                       None))
            h4 += scored(t, task, seed, sft, 'dpo_human_b0.1', [f'{t}/label_human'], dpo(seed, f'{t}/prefs_human.pt', sft))
            for epochs in (6, 12) if task == 'sentiment' else ():  # the frontier's dpo_b0.1 is 3 epochs
                h3 += scored(t, task, seed, sft, f'dpo_e{epochs}_b0.1', [f'{t}/label'],
                             dpo(seed, f'{t}/prefs.pt', sft, epochs=epochs))
    return F.after_frontier(h1 + h4 + h3 + h1_end, RES)


if __name__ == '__main__':
    os.chdir(F.ROOT)
    F.main(jobs(), RES, __doc__)
