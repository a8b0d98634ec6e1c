"""
RM size against policy size (the paper's story behind H6): a verifier much smaller than the policy should still
guide RL where verifying is simpler than generating, and RM + RL's lead over DPO should grow when the policy grows
and the verifier does not. On sentiment only (the one task with a gap to grow), three seeds, on the frontier's
protocol. Its own sweep: it reuses only the frontier's SFT and pairs (rebuilt if missing) and runs everything it
compares itself, in out/size/, because a comparison is only sound between runs of one machine (below).

  SFT-sized    the frontier's dpo_b0.1, rloo_b0.1 and RM commands, H1's DPO with a snapshot every 1/6 epoch
               (dpo_dense_b0.1, a control for the wide DPO's denser snapshots), and RLOO (as rloo_b0.1) against a
               global RM from scratch at 1/8 of the policy's parameters (rm_small: 2 layers, width 56, 0.31M
               against the SFT's 2.58M; the frontier RM's flags otherwise); best-of-16 by the RM gives SFT's point
               (best-of-1) and a reference curve (16, not the frontier's 64: the cost)
  wide policy  an SFT twice as wide (n_embd 384, 8.7M parameters; the SFT's flags but its learning rate, chosen from
               2e-3 (the SFT's), 1e-3 and 5e-4 by val loss on seed 1337: 1e-3), then DPO on the same pairs and RLOO
               against each of the two RMs at half the frontier's fine-tuning rate (1.5e-4, as the wide SFT's rate is
               half the SFT's), a snapshot every 31 steps (DPO, 1/4 epoch) and every 20 (RLOO); named wide_*, scored
               against the wide SFT (KL to it); its best-of-16 by the RM gives its SFT point
  growth's rates  the growth row's two methods, the wide DPO and the wide RLOO against the scratch RM, also at the
               frontier's 3e-4, with a snapshot every 3 steps up to step 45 as well (at that rate a first pass found
               both past 10 nats at their first regular snapshot); named wide_*_lr0.0003_b0.1.
               experiments/report.py chooses each method's rate on val with its checkpoint: the val-best snapshot
               within the budget over both rates' runs, so both methods get the same tuning. The other wide runs
               have the one rate (the cost)
  own pairs    the frontier's pairs are the SFT-sized policy's samples, so for the wide policy they are off-policy
               (H4 in experiments/hypotheses.py measures what that does to the SFT-sized DPO). The control:
               wide_dpo_own, the wide DPO (at 1.5e-4) on pairs of the wide SFT's own samples, labelled as the
               frontier's (4000 + 500 untied, tau for 93% agreement)

The two wide SFT rates not chosen are jobs in the list that no score needs, so the runner skips them; they ran on
the first machine with the same commands (python train_mle.py --loss sft --n_embd 384 --lr LR --seed 1337), logs
in results/size/logs/seed1337_sft_wide_lr<LR>.jsonl; the first machine's run at the chosen rate, which they were
compared with, is seed1337_sft_wide_lr0.001_first_machine.jsonl there.

One machine per seed: the stages are bitwise reproducible on one machine, not across CPUs, and the drift is not
small: the frontier's DPO command, rerun on another machine on that machine's SFT and pairs, ended at a test gold
reward well below the frontier's on all three seeds (the report gives both). So a per-seed difference is only
read between runs of one machine. This sweep first compared its runs with the frontier's; when its checkpoints
were gone and the second rate had to be added, its records were set aside and it was redone whole, on one
machine (the set-aside records left the tree; their timings are in results/retired/size_stale_timings.tsv). A
fresh clone retrains the SFT and relabels, and the runner stops a job whose rerun disagrees with a committed log or
label statistics; then:
  python experiments/size.py --set_aside sentiment 1337   # move the seed's records to results/size/stale/, redo it

  python experiments/size.py [--hours 1.8] [--dry]

Records: results/size/sentiment_seed<seed>_<run>_<split>.jsonl, the frontier's record format;
experiments/report.py draws the SFT-sized runs and the wide ones (read with wide_ dropped) side by side.
"""
import os

import frontier as F
from hypotheses import dpo, rloo, scored

OUT, RES = 'out/size', 'results/size'
TASK = 'sentiment'
WIDE_LRS = (0.002, 0.001, 0.0005)  # the wide SFT's learning rates tried on seed 1337 (logs in results/size/logs/)
WIDE_LR = 0.001
BEST_OF = 16
EARLY = '--early_snapshots 3 45'


def jobs():
    """The frontier's SFT and labelling (skipped when done), then per seed the SFT-sized runs, then the wide ones:
    the growth row's for every seed first."""
    out = []
    for seed in F.SEEDS:
        t, sft, pairs = f'{OUT}/seed{seed}/{TASK}', f'{F.OUT}/seed{seed}/sft', f'{F.OUT}/seed{seed}/{TASK}'
        label, prefs = f'{pairs}/label', f'{pairs}/prefs.pt'
        rm = f'python train_rm.py --prefs {prefs} --init {{init}} --seed {seed} --no_tqdm'
        out += [(f'{t}/rm', [label], rm.format(init=sft), None),
                (f'{t}/rm_small', [label], rm.format(init='scratch') + ' --n_layer 2 --n_head 2 --n_embd 56', None)]
        out += [(f'{t}/score_bon_{split}', [f'{t}/rm'], f'python eval.py score --ref {sft} --task {TASK} '
                 f'--split {split} --seed {seed} {F.SCORE} {sft} --best_of {BEST_OF} --rm {t}/rm',
                 (TASK, seed, 'bon', split)) for split in ('val', 'test')]
        out += scored(t, TASK, seed, sft, 'dpo_b0.1', [label], dpo(seed, prefs, sft))
        out += scored(t, TASK, seed, sft, 'dpo_dense_b0.1', [label], dpo(seed, prefs, sft, every=21))
        for name, reward in (('rloo_b0.1', 'rm'), ('rloo_small_b0.1', 'rm_small')):
            out += scored(t, TASK, seed, sft, name, [f'{t}/{reward}'],
                          f'{rloo(seed)} --reward {t}/{reward} --init {sft}')
    growth, rest = [], []  # the growth row's jobs first, for every seed, so a partial run answers it first
    for seed in F.SEEDS:
        t, pairs = f'{OUT}/seed{seed}/{TASK}', f'{F.OUT}/seed{seed}/{TASK}'
        wide = f'{OUT}/seed{seed}/sft_wide_lr{WIDE_LR}'
        growth += [(f'{OUT}/seed{seed}/sft_wide_lr{lr}', [], f'python train_mle.py --loss sft --n_embd 384 --lr {lr} '
                    f'--seed {seed} --no_tqdm', None) for lr in (WIDE_LRS if seed == F.SEEDS[0] else (WIDE_LR,))]
        growth += [(f'{t}/score_wide_bon_{split}', [wide, f'{t}/rm'], f'python eval.py score --ref {wide} --task {TASK} '
                    f'--split {split} --seed {seed} {F.SCORE} {wide} --best_of {BEST_OF} --rm {t}/rm',
                    (TASK, seed, 'wide_bon', split)) for split in ('val', 'test')]  # its best-of-1 is the SFT point
        half = F.LR / 2
        growth += scored(t, TASK, seed, wide, 'wide_dpo_b0.1', [wide, f'{pairs}/label'],
                         dpo(seed, f'{pairs}/prefs.pt', wide, half, every=31))
        growth += scored(t, TASK, seed, wide, 'wide_rloo_small_b0.1', [wide, f'{t}/rm_small'],
                         f'{rloo(seed, half, 20)} --reward {t}/rm_small --init {wide}')
        # the growth row's two methods at the frontier's rate too, seen every 3 steps early on (they pass 10 nats fast)
        growth += scored(t, TASK, seed, wide, f'wide_dpo_lr{F.LR}_b0.1', [wide, f'{pairs}/label'],
                         f'{dpo(seed, f"{pairs}/prefs.pt", wide, F.LR, every=31)} {EARLY}')
        growth += scored(t, TASK, seed, wide, f'wide_rloo_small_lr{F.LR}_b0.1', [wide, f'{t}/rm_small'],
                         f'{rloo(seed, F.LR, 20)} --reward {t}/rm_small --init {wide} {EARLY}')
        rest.append((f'{t}/label_wide', [wide], f'python eval.py label --policy {wide} --task {TASK} --seed {seed} '
                     f'{F.PAIRS} --out {t}/prefs_wide.pt --json {RES}/labels_wide_{TASK}_seed{seed}.json', None))
        rest += scored(t, TASK, seed, wide, 'wide_dpo_own_b0.1', [wide, f'{t}/label_wide'],
                       dpo(seed, f'{t}/prefs_wide.pt', wide, half, every=31))
        rest += scored(t, TASK, seed, wide, 'wide_rloo_b0.1', [wide, f'{t}/rm'],
                       f'{rloo(seed, half, 20)} --reward {t}/rm --init {wide}')
    out += growth + rest
    return F.after_frontier(out, RES)


def block(task, seed):
    """--set_aside sentiment SEED: the seed's records, label statistics and logs, and the timings of this sweep's
    jobs (the frontier's SFT and labelling it reuses count under the frontier). The wide SFT's rates not chosen
    are not redone: their logs stay."""
    if task != TASK:
        raise SystemExit(f"--set_aside: no block '{task}': this sweep runs {TASK} only")
    frontier = {name for name, *_ in F.jobs()}
    return ([f'{TASK}_seed{seed}_', f'labels_wide_{TASK}_seed{seed}.json', f'labels_{TASK}_seed{seed}.json',
             f'logs/seed{seed}_{TASK}_', f'logs/seed{seed}_sft.jsonl', f'logs/seed{seed}_sft_wide_lr{WIDE_LR}.jsonl'],
            lambda job: f'/seed{seed}/' in job and job not in frontier)


if __name__ == '__main__':
    os.chdir(F.ROOT)
    F.main(jobs(), RES, __doc__, block=block)
