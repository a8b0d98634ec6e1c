#!/usr/bin/env bash
# The whole study in miniature on one task: SFT -> preference labels from the gold verifier -> reward model,
# offline DPO (1 and 2 epochs), online DPO (SFT sampler and DPO sampler), RLOO -> gold evaluation and table.
#   bash run.sh                 # CPU default, about 13.5 minutes on 2 quiet cores; results in out/
#   bash run.sh tiny            # toy size, a few minutes; results in out/tiny (the end-to-end test)
#   TASK=short bash run.sh      # another task (sentiment | short | overlap); SEED=1 another seed
# A stage that finished (its 'done' marker exists) is reused when rerun; delete its directory to redo it.
set -euo pipefail
cd "$(dirname "$0")"
SIZE=${1:-default}
TASK=${TASK:-sentiment}
SEED=${SEED:-1337}
if [ "$SIZE" = tiny ]; then
  OUT=${OUT:-out/tiny}
  SFT="--n_layer 2 --n_head 2 --n_embd 64 --max_iters 400 --lr 3e-3"
  PAIRS="--n_pairs 2000 --n_val 200"; RM="--lr 3e-3 --epochs 3"; DPO="--lr 1e-3"
  ODPO="--n_prompts 500 --k 4 --lr 1e-3"; RLOO="--max_iters 100 --lr 1e-3"; SCORE="--n_prompts 300"
elif [ "$SIZE" = default ]; then
  OUT=${OUT:-out}
  SFT=""; PAIRS="--n_pairs 4000 --n_val 500"; RM=""; DPO=""; ODPO=""; RLOO=""; SCORE=""
else
  echo "usage: bash run.sh [default|tiny]" >&2; exit 2
fi
COMMON="--seed $SEED --no_tqdm"
mkdir -p "$OUT"
touch "$OUT/timings.txt"  # each stage's latest wall time, one line per stage

stage() {  # stage NAME COMMAND...: run once, time it, mark it done
  local name=$1; shift
  if [ -f "$OUT/$name.done" ]; then echo "== $name: done before, reused"; return; fi
  echo "== $name: $*"
  local t0=$SECONDS
  "$@"
  sed -i "/^$name /d" "$OUT/timings.txt"
  echo "$name $((SECONDS - t0))s" | tee -a "$OUT/timings.txt"
  touch "$OUT/$name.done"
}

stage sft        python train_mle.py --loss sft --out_dir $OUT/sft --overwrite $COMMON $SFT
stage label      python eval.py label --policy $OUT/sft --task $TASK --out $OUT/prefs_$TASK.pt --seed $SEED $PAIRS
stage rm         python train_rm.py --prefs $OUT/prefs_$TASK.pt --init $OUT/sft --out_dir $OUT/rm --overwrite $COMMON $RM
stage dpo        python train_mle.py --loss dpo --prefs $OUT/prefs_$TASK.pt --ref $OUT/sft --out_dir $OUT/dpo --overwrite $COMMON $DPO
stage dpo2x      python train_mle.py --loss dpo --prefs $OUT/prefs_$TASK.pt --ref $OUT/sft --out_dir $OUT/dpo2x --epochs 2 --overwrite $COMMON $DPO
stage odpo_sft   python train_rl.py --algo online_dpo --reward $OUT/rm --init $OUT/sft --out_dir $OUT/odpo_sft --overwrite $COMMON $ODPO
stage odpo_dpo   python train_rl.py --algo online_dpo --reward $OUT/rm --init $OUT/dpo --ref $OUT/sft --out_dir $OUT/odpo_dpo --overwrite $COMMON $ODPO
stage rloo       python train_rl.py --algo rloo --reward $OUT/rm --init $OUT/sft --out_dir $OUT/rloo --overwrite $COMMON $RLOO
stage score      python eval.py score $OUT/sft $OUT/dpo $OUT/dpo2x $OUT/odpo_sft $OUT/odpo_dpo $OUT/rloo \
                   --ref $OUT/sft --task $TASK --seed $SEED --json $OUT/eval_$TASK.json $SCORE
python eval.py table $OUT/eval_$TASK.json
echo "stage wall times:"; cat "$OUT/timings.txt"
if [ "$SIZE" = default ]; then  # the committed copy the README quotes
  mkdir -p results
  cp $OUT/eval_$TASK.json results/run_${TASK}_seed$SEED.json
  cp $OUT/timings.txt results/run_${TASK}_seed${SEED}_timings.txt
fi
