#!/usr/bin/env bash
# H5 and RM size in miniature: held-out preference likelihood and accuracy (the file's val pairs) of DPO's
# implicit reward, a local RM, the global RM from SFT, and a small global RM trained from scratch.
# Needs the outputs of `bash run.sh` (out/sft, out/prefs_sentiment.pt, out/rm, out/dpo, out/dpo2x).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}; TASK=${TASK:-sentiment}; SEED=${SEED:-1337}
PREFS=$OUT/prefs_$TASK.pt
[ -f $OUT/rm_local/ckpt.pt ] || python train_rm.py --prefs $PREFS --init $OUT/sft --rm_type local \
  --out_dir $OUT/rm_local --seed $SEED --no_tqdm
[ -f $OUT/rm_small/ckpt.pt ] || python train_rm.py --prefs $PREFS --init scratch --n_layer 2 --n_embd 64 \
  --out_dir $OUT/rm_small --seed $SEED --no_tqdm
mkdir -p results
for run in dpo dpo2x rm_local rm rm_small; do
  python eval.py prefs $OUT/$run --prefs $PREFS --json results/h5_${TASK}_$run.json
done
