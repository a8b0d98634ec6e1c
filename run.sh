#!/usr/bin/env bash
# The main job: the study's argument at demo size, on one task and seed. SFT -> preference pairs labelled by the
# gold verifier -> offline DPO, and a reward model then RLOO (RM + RL), and best-of-N by the RM; every snapshot
# along training scored on val and test prompts; ends with gold reward against KL to SFT (a figure) and, per KL
# budget, each method's val-chosen checkpoint scored on test (a table).
#   bash run.sh                 # results in out/demo; its time on 2 CPU cores: results/demo/*/timings.tsv
#   bash run.sh tiny            # toy size, a few minutes; results in out/tiny (the end-to-end test)
#   TASK=short bash run.sh      # another task (sentiment | short | overlap); SEED=1 another seed
# DPO and RLOO run with the study's settings at beta 0.1 (experiments/frontier.py; DPO seen twice as often), scored
# on 300 prompts instead of all of them. A stage that finished (its .done marker) is reused; delete it to redo the stage.
set -euo pipefail
cd "$(dirname "$0")"
SIZE=${1:-default}
TASK=${TASK:-sentiment}
SEED=${SEED:-1337}
PAIRS="--drop_ties --max_per_prompt 10 --agreement 0.93"  # untied pairs, labels 93% in line with the gold order
if [ "$SIZE" = tiny ]; then
  OUT=${OUT:-out/tiny}
  SFT="--n_layer 2 --n_head 2 --n_embd 64 --max_iters 400 --lr 3e-3"
  PAIRS="$PAIRS --n_pairs 1000 --n_val 200"; RM="--lr 3e-3 --epochs 3"
  DPO="--lr 1e-3 --epochs 2 --eval_interval 16"; RLOO="--lr 1e-3 --max_iters 100 --eval_interval 25"
  BON=8; SCORE="--n_prompts 100 --samples 2"
elif [ "$SIZE" = default ]; then
  OUT=${OUT:-out/demo}
  SFT=""; PAIRS="$PAIRS --n_pairs 4000 --n_val 500"; RM=""
  DPO="--lr 3e-4 --epochs 3 --eval_interval 31"; RLOO="--max_iters 200 --eval_interval 25"
  BON=16; SCORE="--n_prompts 300 --samples 2"
else
  echo "usage: bash run.sh [default|tiny]" >&2; exit 2
fi
COMMON="--seed $SEED --overwrite"
export TQDM_MININTERVAL=1  # a stage's progress bar (in its log, for the status line) redraws at most once a second
mkdir -p "$OUT"
rm -f "$OUT"/*.running     # markers of stages a killed run left running (see stage)

# The status line: the progress bar each running stage last drew in its log, after the job's clock. On a terminal it
# is redrawn in place every 3 s (a line printed over it blanks it first: say); elsewhere, a CI log or a pipe, it is
# a plain line every 30 s. The watcher runs beside the stages until they end, and nothing it does fails the job.
CLEAR=""; if [ -t 1 ]; then CLEAR=$'\r\033[K'; fi
say() { printf '%s%s\n' "$CLEAR" "$*"; }
progress() {  # progress LOG: LOG's last progress bar, condensed: "180/400 loss=5.4321 00:27<00:33" (elapsed<left)
  tail -c 16000 "$1" 2>/dev/null | tr '\r' '\n' |
    LC_ALL=C sed -nE 's/^.*\| *([0-9]+\/[0-9]+) \[([^<]*)<([^,]*),[^],]*(,( .*))?\] *$/\1\5 \2<\3/p' | tail -n 1
}
status() {  # "[m:ss] sft 180/400 loss=5.4321 00:27<00:33 | ...": each stage with a marker, and its progress
  local f name bar line=""
  for f in "$OUT"/*.running; do
    [ -e "$f" ] || continue
    name=${f##*/}; name=${name%.running}; bar=$(progress "$OUT/$name.log")
    line+="${line:+ |} $name${bar:+ $bar}"
  done
  printf '[%d:%02d]%s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$line"
}
watch_stages() {  # the status line, until quiet stops it or the job is gone however it ended (kill -0 $$)
  set +e
  if [ -t 1 ]; then  # no wider than the terminal: a line that wraps is not redrawn in place
    while sleep 3 && kill -0 $$ 2>/dev/null; do
      printf '%s%s' "$CLEAR" "$(status | cut -c "1-$(($(tput cols 2>/dev/null </dev/tty || echo 80) - 1))")"
    done
  else
    while sleep 30 && kill -0 $$ 2>/dev/null; do status; done
  fi
}
quiet() {  # stop the watcher and blank its line, so that what follows starts on a clean one
  if [ -n "$watcher" ]; then kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true; fi
  watcher=""; printf '%s' "$CLEAR"
}
watch_stages & watcher=$!
trap 'kill $(jobs -p) 2>/dev/null || true; quiet' EXIT  # a failed stage takes the one beside it down too

stage() {  # stage NAME COMMAND...: run once (output in OUT/NAME.log, progress on the status line), time it, mark done
  local name=$1; shift
  if [ -f "$OUT/$name.done" ]; then say "== $name: done before, reused"; return; fi
  say "== $name: $*"
  local t0=$SECONDS rc=0
  : > "$OUT/$name.running"  # the status line shows this stage while the marker is there
  "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  rm "$OUT/$name.running"
  if [ $rc != 0 ]; then  # the log's last lines as a terminal shows them (a bar's redraws overwrite each other)
    say "$(sed $'s/.*\r//' "$OUT/$name.log" | tail -20)"; echo "!! $name failed: $OUT/$name.log" >&2; return 1
  fi
  echo "$((SECONDS - t0))" > "$OUT/$name.done"
  say "== $name: done in $((SECONDS - t0)) s"
}

# 1. The reference policy, and preference pairs of its own samples labelled by the gold verifier (the "human").
stage sft   python train_mle.py --loss sft --out_dir $OUT/sft $COMMON $SFT
stage label python eval.py label --policy $OUT/sft --task $TASK --seed $SEED $PAIRS --out $OUT/prefs.pt

# 2. The two routes from the same pairs, side by side with one thread each (on 2 cores, faster than one job at a
#    time with two threads). Offline: DPO. Online: a Bradley-Terry RM, then RLOO against it with a KL penalty, and
#    best-of-N of SFT samples by the RM. Each lane then scores its own snapshots with the gold verifier, val prompts
#    to choose and test prompts to report, so neither core waits for the other (the DPO lane also scores SFT).
export OMP_NUM_THREADS=1
score() {  # score NAME SPLIT CHECKPOINTS... [FLAGS]: gold reward and KL to SFT of each, in OUT/NAME.json
  local name=$1 split=$2; shift 2
  stage $name python eval.py score "$@" --ref $OUT/sft --task $TASK --split $split --seed $SEED $SCORE --json $OUT/$name.json
}
{ stage rm   python train_rm.py --prefs $OUT/prefs.pt --init $OUT/sft --out_dir $OUT/rm $COMMON $RM
  score bon_val val $OUT/sft --best_of $BON --rm $OUT/rm
  stage rloo python train_rl.py --algo rloo --reward $OUT/rm --init $OUT/sft --beta 0.1 --out_dir $OUT/rloo \
                 --snapshots $COMMON $RLOO
  for split in val test; do score score_rloo_$split $split $OUT/rloo/step_*.pt; done; } & online=$!
{ stage dpo  python train_mle.py --loss dpo --prefs $OUT/prefs.pt --ref $OUT/sft --beta 0.1 --out_dir $OUT/dpo \
                 --snapshots $COMMON $DPO
  for split in val test; do score score_dpo_$split $split $OUT/sft $OUT/dpo/step_*.pt; done
  until [ -f $OUT/rm.done ]; do sleep 1; done  # the online lane's RM: a failed one ends the job at `wait` below
  score bon_test test $OUT/sft --best_of $BON --rm $OUT/rm; } & offline=$!
wait $online; wait $offline
quiet

# 3. The picture and the table: compare at matched KL, never at a single point.
python eval.py frontier --val $OUT/score_{dpo,rloo}_val.json $OUT/bon_val.json \
  --test $OUT/score_{dpo,rloo}_test.json $OUT/bon_test.json \
  --out $OUT/frontier_$TASK.png | tee $OUT/table.md
{ for f in "$OUT"/*.done; do printf '%s\t%s\n' "$(basename "$f" .done)" "$(cat "$f")"; done
  printf 'total\t%s\ncpus\t%s\nload\t%s\n' "$SECONDS" "$(getconf _NPROCESSORS_ONLN)" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
} > $OUT/timings.tsv
echo; echo "wall seconds (total: this invocation; stages reused from an earlier one are not in it):"; cat $OUT/timings.tsv
if [ "$SIZE" = default ]; then  # the committed copy the README quotes
  mkdir -p results/demo/${TASK}_seed$SEED
  cp $OUT/frontier_$TASK.png results/demo/${TASK}_seed$SEED/frontier.png
  cp $OUT/table.md $OUT/timings.tsv results/demo/${TASK}_seed$SEED/
fi
