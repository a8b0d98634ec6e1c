"""
RM size against policy size (the paper's story behind H6): a verifier much smaller than the policy should still
guide RL where verifying is simpler than generating, and RM + RL's lead over DPO should grow when the policy grows
and the verifier does not. On sentiment only (the one task with a gap to grow), three seeds, on the frontier's
protocol and checkpoints (experiments/frontier.py; its SFT, pairs and RM are reused, and rerun if missing):

  scratch RM   a global RM from scratch at 1/8 of the policy's parameters (2 layers, width 56: 0.31M against the
               SFT's 2.58M), the frontier RM's flags otherwise; beside the frontier's RM, initialised from SFT
  SFT-sized    RLOO against the scratch RM, as the frontier's rloo_b0.1 (beta 0.1, 200 steps, a snapshot every 25);
               the frontier's DPO and RLOO against its RM are the comparison
  wide policy  an SFT twice as wide (n_embd 384, 8.7M parameters; the SFT's flags but its learning rate, chosen from
               2e-3 (the SFT's), 1e-3 and 5e-4 by val loss on seed 1337: 1e-3), then DPO on the same
               4000 pairs and RLOO against each of the two RMs, with the frontier's settings but two: the
               fine-tuning lr halved for both methods (1.5e-4), as the SFT's was, and a snapshot every 31 steps
               for DPO and every 20 for RLOO. At the frontier's 3e-4 (a first pass, seed 1337) the wide DPO was
               at 15.7 nats by its first snapshot and the wide RLOO at 21.8 by its first, so the 10-nat budget
               fell back to the wide SFT for both. Named wide_*, scored against the wide SFT (KL to it); its
               best-of-N by the frontier's RM gives its SFT point

  growth's rates  the wide DPO (the frontier's pairs) and the wide RLOO against the scratch RM, the two runs of the
               growth row, again at the frontier's 3e-4, now with a snapshot every 3 steps up to step 45 as well
               (--early_snapshots), so that its first snapshots fall inside the budget; named wide_*_lr0.0003_b0.1.
               experiments/report.py then chooses each method's rate on val with its checkpoint: the val-best
               snapshot within the budget over both rates' runs, so the growth row no longer rests on a rate
               picked to place the first snapshots

The two learning rates not chosen are jobs in the list that no score needs, so the runner skips them; they were
run with the same commands (python train_mle.py --loss sft --n_embd 384 --lr LR --seed 1337), logs in
results/size/logs/seed1337_sft_wide_lr<LR>.jsonl.

The pairs are samples of the SFT-sized policy, so for the wide policy they are off-policy (H4,
experiments/hypotheses.py: off-policy pairs moved the SFT-sized DPO by +0.070 ± 0.055 within 10 nats on sentiment,
seeds 1337, 1, 2). The control: wide_dpo_own, the wide DPO on pairs of the wide SFT's own samples, labelled as the
frontier's (4000 + 500 untied, tau for 93% agreement).

  python experiments/size.py [--hours 1.8] [--dry]
  python experiments/size.py --set_aside sentiment 1337   # redo a seed whole on this machine (below)

One machine per seed: the stages are bitwise reproducible on one machine, not across CPUs. A fresh clone retrains
the SFT and relabels, and the runner stops a job whose rerun disagrees with a committed log or label statistics;
--set_aside moves the seed's records, logs and timings to results/size/stale/ so that the seed is redone whole.
The SFT-sized runs compared with (the frontier's DPO and RLOO, H1's dense DPO) stay the frontier's records: after
such a redo they come from another machine's SFT of the same seed and recipe, so a per-seed difference between
the two sizes pairs runs that share their data and seed but not their SFT's last digits.

Records: results/size/sentiment_seed<seed>_<run>_<split>.jsonl, the frontier's record format;
experiments/report.py draws them with the frontier's DPO and RLOO curves.
"""
import os

import frontier as F
from hypotheses import dpo, rloo, scored

RES = 'results/size'
TASK = 'sentiment'
WIDE_LRS = (0.002, 0.001, 0.0005)  # the wide SFT's learning rates tried on seed 1337; final val loss 4.61, 4.33,
WIDE_LR = 0.001                    # 4.40 (the SFT-sized policy at its 2e-3: 4.48)
WIDE_FT_LR = F.LR / 2  # DPO's and RLOO's lr on the wide policy


def jobs():
    """The frontier's jobs that these depend on (skipped when done), then the scratch RM and RLOO against it for
    every seed (cheap), then the wide policy's runs, seed-major."""
    out = []
    for seed in F.SEEDS:
        t, sft = f'{F.OUT}/seed{seed}/{TASK}', f'{F.OUT}/seed{seed}/sft'
        out.append((f'{t}/rm_small', [f'{t}/label'], f'python train_rm.py --prefs {t}/prefs.pt --init scratch '
                    f'--n_layer 2 --n_head 2 --n_embd 56 --seed {seed} --no_tqdm', None))
        out += scored(t, TASK, seed, sft, 'rloo_small_b0.1', [f'{t}/rm_small'], f'{rloo(seed)} --reward {t}/rm_small --init {sft}')
    for seed in F.SEEDS:
        t, wide = f'{F.OUT}/seed{seed}/{TASK}', f'{F.OUT}/seed{seed}/sft_wide'
        out += [(f'{wide}_lr{lr}', [], f'python train_mle.py --loss sft --n_embd 384 --lr {lr} --seed {seed} --no_tqdm',
                 None) for lr in (WIDE_LRS if seed == F.SEEDS[0] else (WIDE_LR,)) if lr]
        if WIDE_LR is None:
            continue
        wide += f'_lr{WIDE_LR}'
        out += [(f'{t}/score_wide_bon_{split}', [wide, f'{t}/rm'], f'python eval.py score --ref {wide} --task {TASK} '
                 f'--split {split} --seed {seed} {F.SCORE} {wide} --best_of {F.BEST_OF} --rm {t}/rm',
                 (TASK, seed, 'wide_bon', split)) for split in ('val', 'test')]
        # the frontier's pairs are the SFT-sized policy's samples; the control: pairs of the wide SFT's own, labelled alike
        out.append((f'{t}/label_wide', [wide], f'python eval.py label --policy {wide} --task {TASK} --seed {seed} '
                    f'{F.PAIRS} --out {t}/prefs_wide.pt --json {RES}/labels_wide_{TASK}_seed{seed}.json', None))
        for name, label, prefs in (('wide_dpo_b0.1', 'label', 'prefs'), ('wide_dpo_own_b0.1', 'label_wide', 'prefs_wide')):
            out += scored(t, TASK, seed, wide, name, [wide, f'{t}/{label}'],
                          dpo(seed, f'{t}/{prefs}.pt', wide, WIDE_FT_LR, every=31))
        for name, rm in (('wide_rloo_b0.1', 'rm'), ('wide_rloo_small_b0.1', 'rm_small')):
            out += scored(t, TASK, seed, wide, name, [wide, f'{t}/{rm}'],
                          f'{rloo(seed, WIDE_FT_LR, 20)} --reward {t}/{rm} --init {wide}')
        early = '--early_snapshots 3 45'  # at 3e-4 the wide runs passed 10 nats before step 25: look every 3 steps
        out += scored(t, TASK, seed, wide, f'wide_dpo_lr{F.LR}_b0.1', [wide, f'{t}/label'],
                      f'{dpo(seed, f"{t}/prefs.pt", wide, F.LR, every=31)} {early}')
        out += scored(t, TASK, seed, wide, f'wide_rloo_small_lr{F.LR}_b0.1', [wide, f'{t}/rm_small'],
                      f'{rloo(seed, F.LR, 20)} --reward {t}/rm_small --init {wide} {early}')
    return F.after_frontier(out, RES)


def block(task, seed):
    """--set_aside sentiment SEED: the seed's records, label statistics and logs, and the timings of this sweep's
    own jobs (the frontier's jobs it reuses count under the frontier). The wide SFT's rates not chosen are not
    redone: their logs and times stay."""
    if task != TASK:
        raise SystemExit(f"--set_aside: no block '{task}': this sweep runs {TASK} only")
    frontier = {name for name, *_ in F.jobs()}
    kept = {f'{F.OUT}/seed{seed}/sft_wide_lr{lr}' for lr in WIDE_LRS if lr != WIDE_LR}
    own = {name for name, *_ in jobs() if f'/seed{seed}/' in name and name not in frontier | kept}
    return ([f'{TASK}_seed{seed}_', f'labels_wide_{TASK}_seed{seed}.json', f'logs/seed{seed}_{TASK}_',
             f'logs/seed{seed}_sft_wide_lr{WIDE_LR}.jsonl'], own.__contains__)


if __name__ == '__main__':
    os.chdir(F.ROOT)
    F.main(jobs(), RES, __doc__, block=block)
