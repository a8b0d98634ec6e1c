"""
Offline maximum likelihood, the paper's offline route.
  --loss sft : next-token likelihood on the fortunes corpus; makes the reference policy.
  --loss dpo : offline DPO on a preference file, the reference (SFT) frozen, the policy initialised from it.

  python train_mle.py --loss sft --out_dir out/sft
  python train_mle.py --loss dpo --prefs out/prefs.pt --ref out/sft --out_dir out/dpo
  torchrun --nproc_per_node 2 train_mle.py --loss sft  (data parallel: --batch_size is the global batch)
"""
import argparse
import math
import time
from dataclasses import asdict

import torch
import torch.nn.functional as F
from tqdm import tqdm

import model as M

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--loss', choices=['sft', 'dpo'], required=True)
M.add_common_args(p)
p.add_argument('--batch_size', type=int, default=None, help='sequences (sft: 32) or pairs (dpo: 32) per step')
p.add_argument('--lr', type=float, default=None, help='peak learning rate (sft: 2e-3, dpo: 1e-4)')
p.add_argument('--eval_interval', type=int, default=None, help='steps between evals and checkpoints')
p.add_argument('--compile', action='store_true', help='torch.compile the model (CUDA)')
g = p.add_argument_group('sft: the model trained from scratch')
g.add_argument('--vocab_size', type=int, default=4096, help='GPT-2 BPE truncated to this many ids (50257 = GPT-2)')
g.add_argument('--n_layer', type=int, default=4)
g.add_argument('--n_head', type=int, default=4)
g.add_argument('--n_embd', type=int, default=192)
g.add_argument('--block_size', type=int, default=64)
g.add_argument('--dropout', type=float, default=0.0)
g = p.add_argument_group('dpo')
g.add_argument('--prefs', help='preference file from eval.py label')
g.add_argument('--ref', help='the reference policy (an sft checkpoint); the policy starts from it')
g.add_argument('--beta', type=float, default=0.1, help='KL weight: implicit reward = beta*log(pi/pi_ref)')
g.add_argument('--epochs', type=float, default=1.0, help='passes over the preference pairs (2 = DPO(2x))')
g = M.add_experiment_args(p)
g.add_argument('--n_pairs', type=int, default=0, help='dpo: train on the first N pairs of the file (0 = all)')


def parse_args(argv=None):
    """The flags with the defaults that depend on --loss filled in, and every check that needs no file (the
    sweeps run this alone to check a command's flags before any job starts)."""
    args = p.parse_args(argv)
    sft = args.loss == 'sft'
    args.out_dir = args.out_dir or f'out/{args.loss}'
    args.batch_size = args.batch_size or 32
    args.lr = args.lr or (2e-3 if sft else 1e-4)
    if not sft and (args.prefs is None or args.ref is None):
        raise ValueError("--loss dpo needs --prefs and --ref")
    if args.beta <= 0:
        raise ValueError(f"--beta must be > 0, got {args.beta}")
    M.check_experiment_args(args)
    return args


def main():
    args = parse_args()
    sft = args.loss == 'sft'
    rank, world, device = M.ddp_setup(M.get_device(args.device))
    M.seed_everything(args.seed)

    # ---- model (and, for dpo, the frozen reference and the preference data)
    task = None
    if sft:
        cfg = M.GPTConfig(vocab_size=args.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                          n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout)
        model = M.GPT(cfg).to(device)
        # nanoGPT's packing: every document + EOS in one stream, trained on random windows. (Windows cut
        # at document starts would waste about half of each row on padding: the median fortune is 34 tokens.)
        train, val = (torch.tensor([t for d in M.get_data(cfg.vocab_size, s) for t in d]) for s in ('train', 'val'))
        max_iters = args.max_iters or 1000
        unigram = unigram_loss(train, val, cfg.vocab_size)
        if rank == 0:
            print(f"sft: {train.numel()} train / {val.numel()} val tokens; unigram baseline val loss {unigram:.4f}")
    else:
        ref_ckpt = M.load_checkpoint(args.ref, stages=['sft'])
        prefs = M.load_prefs(args.prefs, vocab_size=ref_ckpt['vocab_size'], n_train=args.n_pairs)
        task = prefs['task']
        model = M.model_from_checkpoint(ref_ckpt, device, dropout=args.dropout)
        cfg = model.cfg
        ref = M.frozen(M.model_from_checkpoint(ref_ckpt, device))
        # the reference never changes, so its sequence log-probs are computed once, not at every step
        train, val = (M.with_ref_logprobs(prefs[s], ref, device) for s in ('train', 'val'))
        iters_per_epoch = math.ceil(train['prompts'].size(0) / args.batch_size)
        max_iters = args.max_iters or math.ceil(args.epochs * iters_per_epoch)
        del ref
    args.eval_interval = args.eval_interval or max(1, min(200, max_iters // 5))
    if rank == 0:
        print(f"{args.loss}: {model.num_params() / 1e6:.2f}M parameters, {max_iters} steps, device {device}")
    optimizer = model.configure_optimizer(args.lr, weight_decay=0.1 if sft else 0.0)
    ck, config = M.begin_run(args, model, optimizer, args.loss, rank, world, max_iters=max_iters, device=device)
    step = ck['step'] if ck else 0
    fwd = M.ddp_wrap(torch.compile(model) if args.compile else model, world)

    def save():
        M.save_checkpoint(f'{args.out_dir}/ckpt.pt', model=model.state_dict(), model_args=asdict(cfg),
                          config=config, stage=args.loss, vocab_size=cfg.vocab_size, task=task, step=step,
                          optimizer=optimizer.state_dict(), ref=args.ref, beta=args.beta if not sft else None)

    # ---- the loop. Each step's global batch is a function of (seed, step), so --resume replays the same data
    # and every rank knows it; a rank trains on its rows.
    stop = M.StopFlag()
    bar = tqdm(total=max_iters, initial=step, disable=args.no_tqdm or rank > 0, desc=args.loss)
    t0, tokens = time.time(), 0
    while step < max_iters:
        lr = M.cosine_lr(step, max_iters, args.lr)
        model.train()
        with M.autocast(torch.device(device).type):
            if sft:
                gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
                start = torch.randint(train.numel() - cfg.block_size - 1, (args.batch_size,), generator=gen)
                start, w = M.shard(start, rank, world)
                x = torch.stack([train[i:i + cfg.block_size + 1] for i in start]).to(device)
                loss = lm_loss(fwd, x)  # SFT: -mean_t log pi(x_t | x_<t)
                tokens += args.batch_size * cfg.block_size
                stats = {}
            else:
                batch = M.epoch_batch(train['prompts'].size(0), args.batch_size, step, args.seed)
                idx, w = M.shard(batch, rank, world)
                b = {k: v[idx].to(device) for k, v in train.items()}
                lp_c, lp_r = M.pair_logprobs(fwd, b)  # log pi(y+|x), log pi(y-|x); the reference's are in b
                # DPO: -log sigmoid(beta*[(log pi - log pi_ref)(y+) - (log pi - log pi_ref)(y-)])
                loss, r_c, r_r = M.dpo_loss(lp_c, lp_r, b['ref_chosen'], b['ref_rejected'], args.beta)
                stats = M.dpo_stats(r_c, r_r)
                tokens += batch.numel()
        M.train_step(model, optimizer, loss * w, lr)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f'{loss.item():.4f}')
        stopping = M.all_any(stop.stop, world)
        if step % args.eval_interval == 0 or step == max_iters or stopping:
            dt = time.time() - t0
            row = {'step': step, 'lr': lr, **M.all_mean({'loss': loss.item(), **stats}, w, world)}
            if rank == 0:
                row.update(evaluate(model, val, sft, args.beta, device))
                row['tokens_per_s' if sft else 'pairs_per_s'] = tokens / dt
                if device.startswith('cuda') and sft:
                    row['mfu'] = model.estimate_mfu(tokens / dt / world, M.gpu_peak_flops())
                M.log_and_save(args.out_dir, row, save, bar, stopping, args.snapshots)
            if stopping:
                return
            t0, tokens = time.time(), 0
        elif rank == 0:
            M.early_snapshot(args, step, save)
    bar.close()
    if sft and rank == 0:
        print(f"final val loss {row['val_loss']:.4f} vs unigram baseline {unigram:.4f}")
        show_samples(model, device)


def lm_loss(model, x):
    logits = model(x[:, :-1])
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))


def unigram_loss(train, val, vocab_size):
    """Cross-entropy on the val tokens of the add-one unigram model of the train tokens: the bar to beat."""
    counts = torch.ones(vocab_size).index_add_(0, train, torch.ones(train.numel()))
    return -(counts / counts.sum()).log()[val].mean().item()


@torch.no_grad()
def evaluate(model, val, sft, beta, device, bs=256):
    """sft: val loss over every val token. dpo: held-out preference log-likelihood and accuracy of the
    implicit reward (pairs whose gold rewards tie are left out of the accuracy)."""
    model.eval()
    with M.autocast(torch.device(device).type):
        if sft:  # every val token once (bar the first of each window), in consecutive windows
            T = model.cfg.block_size
            x = val[:(val.numel() - 1) // T * T + 1]
            x = torch.stack([x[i:i + T + 1] for i in range(0, x.numel() - 1, T)])
            return {'val_loss': sum(lm_loss(model, x[i:i + bs].to(device)).item() * x[i:i + bs].size(0)
                                    for i in range(0, x.size(0), bs)) / x.size(0)}
    lp_c, lp_r = M.over_pairs(M.pair_logprobs, model, val, device, bs)
    margins = beta * ((lp_c - val['ref_chosen']) - (lp_r - val['ref_rejected']))
    return M.pref_metrics(margins, val['r_chosen'], val['r_rejected'])


def show_samples(model, device, n=3):
    enc = M.get_tokenizer(model.cfg.vocab_size)
    prompts, _, _ = M.get_prompts(model.cfg.vocab_size, 'val')
    out, mask = M.sample(model, prompts[:n].to(device), 24, enc.eos, temperature=1.0,
                         generator=torch.Generator(device).manual_seed(0))
    for i in range(n):
        print(f"--- {M.decode(enc, prompts[i])!r} -> {M.decode(enc, out[i], mask[i])!r}")


if __name__ == '__main__':
    M.main_guard(main)
