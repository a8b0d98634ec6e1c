#!/usr/bin/env bash
# How to run two experiment jobs on a 2-core CPU: side by side with one thread each (A), or one after the other
# with two threads each (B). Two short RLOO runs from the frontier's seed-1337 sentiment cell (needs its SFT and
# RM checkpoints), A and B alternated REPS times; prints each pair's wall seconds and ratio A/B (below 1: side by
# side is faster).   bash bench/side_by_side.sh [REPS]    (the output is kept in results/side_by_side.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
D=out/frontier/seed1337
run() {  # run THREADS OUT_DIR SEED
  OMP_NUM_THREADS=$1 python train_rl.py --algo rloo --reward $D/sentiment/rm --init $D/sft --max_iters 30 \
    --no_tqdm --overwrite --out_dir out/bench/$2 --seed $3 > /dev/null
}
now() { date +%s.%N; }
for i in $(seq "${1:-3}"); do
  t0=$(now); run 1 a1 1337 & run 1 a2 1; wait; t1=$(now)
  run 2 b1 1337; run 2 b2 1; t2=$(now)
  a=$(awk "BEGIN { print $t1 - $t0 }"); b=$(awk "BEGIN { print $t2 - $t1 }")
  awk "BEGIN { printf \"pair $i: side by side (1 thread each) %.1f s, in turn (2 threads each) %.1f s, ratio %.3f\\n\", $a, $b, $a / $b }"
done | tee results/side_by_side.txt
