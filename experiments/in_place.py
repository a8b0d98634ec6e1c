"""
What reading a completion in place (eval.in_place) changes: SFT samples on the test prompts scored by VADER
alone and as they read after their prompt, for `sentiment` (24 tokens) and `short` (2 tokens).

  python experiments/in_place.py --policy out/frontier/seed1337/sft    # writes results/in_place.json
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import eval as E  # noqa: E402
import model as M  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument('--policy', default='out/frontier/seed1337/sft')
ap.add_argument('--samples', type=int, default=4, help='samples per test prompt')
ap.add_argument('--out', default='results/in_place.json')
args = ap.parse_args()

ckpt = M.load_checkpoint(args.policy, stages=['sft'])
policy = E.load_model(ckpt, args.policy, 'cpu')
enc = M.get_tokenizer(ckpt['vocab_size'])
out = {'policy': args.policy, 'samples_per_prompt': args.samples}
for task in ('sentiment', 'short'):
    t = E.TASKS[task]
    prompts, _, _ = M.get_prompts(ckpt['vocab_size'], 'test', t['prompt_len'], t['completion_len'])
    y, m = E.generate(policy, prompts, args.samples, t['completion_len'], enc.eos, 1.0, 0, 'cpu', 256)
    x = prompts.repeat_interleave(args.samples, 0)
    texts = [(M.decode(enc, p), M.decode(enc, c, k)) for p, c, k in zip(x, y, m)]
    alone = torch.tensor(E.vader([c for _, c in texts]))
    placed = torch.tensor(E.vader([E.in_place(p, c) for p, c in texts]))
    joined = torch.tensor([E.in_place(p, c) != c for p, c in texts])
    out[task] = {'n_completions': len(texts), 'mid_word_share': joined.float().mean().item(),
                 'mean_alone': alone.mean().item(), 'mean_in_place': placed.mean().item(),
                 'changed_share': (alone != placed).float().mean().item(),
                 'ly_starts': sum(c.startswith('ly') for _, c in texts)}
    print(task, json.dumps(out[task]))
with open(args.out, 'w') as f:
    json.dump(out, f, indent=1)
