"""
A reference point for the reward models: a bag-of-words Bradley-Terry model (one weight per token, score =
sum of the completion's token weights) fitted by L-BFGS on a preference file, with an L2 penalty chosen
from a small grid by held-out accuracy. How much of the preference signal is a simple verifier's?

  python experiments/bow_rm.py --prefs out/prefs_sentiment.pt --json results/bow_rm_sentiment.json
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import model as M  # noqa: E402

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--prefs', default='out/prefs_sentiment.pt')
p.add_argument('--json', default=None)
args = p.parse_args()
torch.set_num_threads(1)
prefs = M.load_prefs(args.prefs)
V = prefs['vocab_size']


def count_diff(d):
    def counts(y, m):
        return torch.zeros(y.size(0), V).scatter_add_(1, y, m)
    return counts(d['chosen'], d['chosen_mask']) - counts(d['rejected'], d['rejected_mask'])


X_train, X_val = count_diff(prefs['train']), count_diff(prefs['val'])
rows = []
for l2 in (1e-4, 1e-3, 1e-2):
    w = torch.zeros(V, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = -F.logsigmoid(X_train @ w).mean() + l2 * (w ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        row = {'l2': l2, **M.pref_metrics(X_val @ w, prefs['val']['r_chosen'], prefs['val']['r_rejected'])}
    rows.append(row)
    print(M.format_row(row))
best = max(rows, key=lambda r: r['val_pref_acc'])
print(f"best by held-out accuracy: {M.format_row(best)}")
if args.json:
    with open(args.json, 'w') as f:
        json.dump({'prefs': args.prefs, 'runs': rows, 'best': best}, f, indent=2)
