"""
Bradley-Terry reward model: maximum likelihood of the preference file, the first stage of the online route.
  --rm_type global : a GPT backbone + scalar head read at each row's last real token (the paper's RM);
                     initialised from the SFT policy, or from scratch at any size (--init scratch).
  --rm_type local  : the sum of a policy-shaped network's token log-probs, r(x, y) = sum_t log pi(y_t | x, y_<t)
                     (the paper's local RM; the class DPO's implicit reward lives in).

  python train_rm.py --prefs out/prefs.pt --init out/sft --out_dir out/rm
  python train_rm.py --prefs out/prefs.pt --init scratch --n_layer 2 --n_embd 64 --out_dir out/rm_small
"""
import argparse
import json
import math
import os
from dataclasses import asdict

import torch
from tqdm import tqdm

import model as M

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
M.add_common_args(p)
p.add_argument('--prefs', required=True, help='preference file from eval.py label')
p.add_argument('--init', default='out/sft', help="an sft checkpoint to start from, or 'scratch'")
p.add_argument('--rm_type', choices=['global', 'local'], default='global')
p.add_argument('--epochs', type=float, default=2.0, help='passes over the preference pairs')
p.add_argument('--batch_size', type=int, default=32, help='pairs per step')
p.add_argument('--lr', type=float, default=None, help='peak learning rate (global 1e-3, local 1e-4)')
p.add_argument('--dropout', type=float, default=0.0)
p.add_argument('--eval_interval', type=int, default=None, help='steps between evals and checkpoints')
g = p.add_argument_group('--init scratch: the size of the reward model')
g.add_argument('--n_layer', type=int, default=2)
g.add_argument('--n_head', type=int, default=4)
g.add_argument('--n_embd', type=int, default=64)
g = M.add_experiment_args(p)
g.add_argument('--n_pairs', type=int, default=0, help='train on the first N pairs of the file (0 = all)')
g.add_argument('--keep_best', action='store_true',
               help='end with the snapshot of best held-out preference log-likelihood (early stopping; needs --snapshots)')


def parse_args(argv=None):
    """The flags with the defaults that depend on --rm_type filled in, and every check that needs no file (the
    sweeps run this alone to check a command's flags before any job starts)."""
    args = p.parse_args(argv)
    args.out_dir = args.out_dir or 'out/rm'
    args.lr = args.lr or (1e-3 if args.rm_type == 'global' else 1e-4)
    if args.keep_best and not args.snapshots:
        raise ValueError("--keep_best chooses among the snapshots: add --snapshots")
    M.check_experiment_args(args)
    return args


def main():
    args = parse_args()
    rank, world, device = M.ddp_setup(M.get_device(args.device))
    M.seed_everything(args.seed)

    # ---- data and model
    if args.init == 'scratch':
        prefs = M.load_prefs(args.prefs, n_train=args.n_pairs)
        P, C = prefs['train']['prompts'].size(1), prefs['train']['chosen'].size(1)
        cfg = M.GPTConfig(vocab_size=prefs['vocab_size'], block_size=P + C, n_layer=args.n_layer,
                          n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout,
                          scalar_head=args.rm_type == 'global')
        model = M.GPT(cfg).to(device)
    else:
        init = M.load_checkpoint(args.init, stages=['sft'])
        prefs = M.load_prefs(args.prefs, vocab_size=init['vocab_size'], n_train=args.n_pairs)
        model = M.model_from_checkpoint(init, device, dropout=args.dropout, scalar_head=args.rm_type == 'global')
        cfg = model.cfg
    train, val = prefs['train'], prefs['val']
    n = train['prompts'].size(0)
    max_iters = args.max_iters or math.ceil(args.epochs * n / args.batch_size)
    args.eval_interval = args.eval_interval or max(1, min(200, max_iters // 5))
    if rank == 0:
        print(f"rm ({args.rm_type}, init {args.init}): {model.num_params() / 1e6:.2f}M parameters, {n} pairs, "
              f"{max_iters} steps, device {device}")
    optimizer = model.configure_optimizer(args.lr, weight_decay=0.0)
    ck, config = M.begin_run(args, model, optimizer, 'rm', rank, world, max_iters=max_iters, device=device)
    step = ck['step'] if ck else 0
    fwd = M.ddp_wrap(model, world)

    def save(reward_mean=None):
        M.save_checkpoint(f'{args.out_dir}/ckpt.pt', model=model.state_dict(), model_args=asdict(cfg),
                          config=config, stage='rm', rm_type=args.rm_type, vocab_size=cfg.vocab_size,
                          task=prefs['task'], step=step, optimizer=optimizer.state_dict(), reward_mean=reward_mean)

    # ---- the loop
    stop = M.StopFlag()
    bar = tqdm(total=max_iters, initial=step, disable=args.no_tqdm or rank > 0, desc=f'rm-{args.rm_type}')
    while step < max_iters:
        lr = M.cosine_lr(step, max_iters, args.lr)
        idx, w = M.shard(M.epoch_batch(n, args.batch_size, step, args.seed), rank, world)
        model.train()
        with M.autocast(torch.device(device).type):
            r_c, r_r = M.pair_rewards(fwd, {k: train[k][idx].to(device) for k in M.PREF_KEYS}, args.rm_type)
            loss = M.bt_loss(r_c, r_r)  # Bradley-Terry: -log sigmoid(r(x,y+) - r(x,y-))
        M.train_step(model, optimizer, loss * w, lr)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f'{loss.item():.4f}')
        stopping = M.all_any(stop.stop, world)
        if step % args.eval_interval == 0 or step == max_iters or stopping:
            row = {'step': step, 'lr': lr, **M.all_mean({'loss': loss.item(),
                                                          'train_acc': (r_c > r_r).float().mean().item()}, w, world)}
            if rank == 0:
                margins, _ = scores(model, val, args.rm_type, device)
                row.update(M.pref_metrics(margins, val['r_chosen'], val['r_rejected']))
                M.log_and_save(args.out_dir, row, save, bar, stopping, args.snapshots)
            if stopping:
                return
        elif rank == 0:
            M.early_snapshot(args, step, save)
    bar.close()
    if rank > 0:
        return

    if args.keep_best:  # the eval points that left a snapshot (an interrupted step did not), read back from the log
        rows = [json.loads(line) for line in open(f'{args.out_dir}/log.jsonl')]
        row = max((r for r in rows if os.path.exists(f"{args.out_dir}/step_{r['step']}.pt")),
                  key=lambda r: r['val_pref_loglik'])
        model.load_state_dict(M.safe_load(f"{args.out_dir}/step_{row['step']}.pt", 'snapshot')['model'])
        print(f"keeping step {row['step']} of {max_iters}: the best val preference log-likelihood")
    # Every completion in the file was sampled from the reference policy, so the mean score over the val
    # completions centres the reward on reference samples: RL then starts near reward 0.
    _, all_scores = scores(model, val, args.rm_type, device)
    save(reward_mean=all_scores.mean().item())
    train_margins, _ = scores(model, train, args.rm_type, device)
    print(f"train acc {M.pref_metrics(train_margins, train['r_chosen'], train['r_rejected'])['val_pref_acc']:.3f} "
          f"| val {M.format_row(row)} | reward mean on reference samples {all_scores.mean().item():.4g}")


def scores(model, d, rm_type, device):
    """Margins (chosen - rejected) of every pair in a split, and all the scores."""
    model.eval()
    c, r = M.over_pairs(M.pair_rewards, model, d, device, rm_type=rm_type)
    return c - r, torch.cat([c, r])


if __name__ == '__main__':
    M.main_guard(main)
