#!/usr/bin/env bash
# How often a two-rank torchrun run fails at toy size on CPU (gloo), with one CPU-burning process for load.
#   bash bench/ddp_exit.sh [N]      # N runs of `train_mle.py --loss dpo` (default 40); prints the failures
# The README's before/after figures for the os._exit at the end of model.main_guard come from two copies
# of this script run at once on the 2-core machine (more load), at the commit before that change and after.
set -u
cd "$(dirname "$0")/.."
N=${1:-40}
W=$(mktemp -d)
python -c "import sys; sys.path.insert(0, 'tests'); import conftest as c
c.save_tiny('$W/sft', c.tiny_gpt()); c.planted_prefs('$W/prefs.pt', task=c.TASK)"
python -c "while True: pass" & burner=$!
fails=0
for i in $(seq 1 "$N"); do
  OMP_NUM_THREADS=1 python -m torch.distributed.run --standalone --nproc_per_node 2 train_mle.py --loss dpo \
    --prefs "$W/prefs.pt" --ref "$W/sft" --epochs 2 --batch_size 9 --lr 1e-3 --no_tqdm --out_dir "$W/dpo" \
    --overwrite > "$W/log" 2>&1 || { fails=$((fails + 1)); cp "$W/log" "$W/failed_$i.log"; }
done
kill "$burner"
echo "$fails of $N two-rank runs failed (logs of failures in $W)"
