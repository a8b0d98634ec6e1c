"""What a block of a sweep ran on: the CPU, the torch build and the thread count, written as JSON. The stages are
bitwise reproducible on one machine only, so a sweep runs this first in each (task, seed) block; the runner
refuses a rerun whose record disagrees with the committed one (another machine would mix two float orders).

  python experiments/machine.py --json results/frontier_v3/machine_sentiment_seed1337.json
"""
import argparse
import json
import os
import platform

import torch


def machine():
    cpu = {}
    if os.path.exists('/proc/cpuinfo'):  # Linux: the model name alone can be as vague as "AMD EPYC"
        for line in open('/proc/cpuinfo'):
            key, _, value = line.partition(':')
            if key.strip() in ('model name', 'cpu family', 'model', 'stepping') and key.strip() not in cpu:
                cpu[key.strip()] = value.strip()
    return {'cpu': cpu or platform.processor(), 'machine': platform.machine(), 'torch': torch.__version__,
            'threads': torch.get_num_threads()}


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--json', required=True, help='where to write it (atomically)')
    path = ap.parse_args().json
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(machine(), f, indent=1)
        f.write('\n')
    os.replace(path + '.tmp', path)
