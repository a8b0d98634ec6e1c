"""
The same work done by this repo and by Hugging Face transformers + trl, on the same model shape, on the same
machine, in one run: sampling tokens/s, SFT tokens/s, DPO pairs/s, RLOO samples/s. Prints a markdown table of
medians and repo/peer ratios and writes results/bench.json and results/bench.md.

  pip install -r bench/requirements.txt   # the peers: bench-only, never needed by the stages
  python bench/bench.py                   # 5 reps: 2-4 minutes on a busy 2-core CPU (1 thread)
  python bench/bench.py --quick           # 3 reps of shorter blocks: about 1 minute
  python bench/bench.py --only sample,sft --reps 9 --threads 2

Both sides use one model shape, the repo's default GPTConfig as a GPT2Config (vocab 4096, 64 positions, 4 layers,
4 heads, 192 wide, no dropout, exact GELU, tied embeddings). The repo's GPT is built from random init (seeded)
and its weights are copied into GPT2LMHeadModel / GPT2ForSequenceClassification, so both sides start from the
same function (the logits are checked to agree). Everything runs fp32 on the CPU, same thread count, no
gradient checkpointing, torch AdamW (not fused) on both sides.

What is timed. A rep is a block of n steps on each side; the sides alternate step by step (A B B A A B ...), so
both see the same machine load; a figure is the median over reps of the block's throughput (units / summed step
time). One untimed warm-up step per side comes first. Steps per block: sample 4, sft 4, dpo 4, rl 3 (--quick:
2, 2, 2, 1).
  sample : one call = 64 prompts of 8 tokens -> 32 new tokens, pure temperature 1. Repo: model.sample (KV cache,
           EOS disabled). Peer: GPT2LMHeadModel.generate(do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
           max_new_tokens=32, min_new_tokens=32). tokens/s = 64*32 / call time.
  sft    : one step = a 32 x 65-token batch cut from a token stream, forward on 64 tokens, train_mle.py's lm_loss,
           AdamW (train_mle.py's param groups, lr 2e-3, wd 0.1), grad clip 1. Repo: model.GPT + M.train_step.
           Peer: a plain PyTorch loop over GPT2LMHeadModel (same loss on its logits, same optimiser and clip).
           tokens/s = 32*64 / step time.
  dpo    : one step = 32 pairs, 8-token prompt + 24-token completions (the last one EOS), reference
           log-probs precomputed (untimed) on both sides. Repo: train_mle.py --loss dpo's loop body
           (M.epoch_batch, M.pair_logprobs, M.dpo_loss, M.train_step). Peer: trl.DPOTrainer(precompute_ref_log_probs=True)
           .train(); its step = the time between consecutive on_step_end callbacks (data loading, collation,
           forward, loss, backward, clip, AdamW, LR schedule, metric gathering: the trainer's whole steady-state
           step), minus the time our callback spends running the repo's step. pairs/s = 32 / step time.
  rl     : one step = 16 prompts x k=4 samples of 24 tokens, sampling + reward model + reference log-probs +
           policy forward/backward + AdamW. Repo: train_rl.py --algo rloo's loop body (bench/profile_rl.py's
           rloo_step). Peer: trl.RLOOTrainer(num_generations=4, generation_batch_size=64, beta=0.1, a
           GPT2ForSequenceClassification reward model of the same shape), timed like DPOTrainer.
           samples/s = 64 / step time.
Not timed: imports, model construction, trainer construction, dataset tokenisation, reference precomputation.
The peers need a tokenizer object: a word-level tokenizer maps token i <-> 't<i>', so both sides see exactly the
same token ids (TRL round-trips through text; that tokenise/decode work is part of TRL's step).
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--reps', type=int, default=None, help='timed blocks per benchmark (default 5, --quick 3)')
p.add_argument('--quick', action='store_true', help='3 reps of shorter blocks: about 1 minute')
p.add_argument('--threads', type=int, default=1,
               help='torch/OpenMP threads for both sides (default 1: on a shared, loaded CPU, 2 threads stall '
                    'on every small op and timings drop 10-40x; use 2 on an idle 2-core machine)')
p.add_argument('--only', default='sample,sft,dpo,rl', help='comma-separated subset of sample,sft,dpo,rl')
p.add_argument('--no_profile', action='store_true', help='skip the repo RLOO step breakdown')
p.add_argument('--out_dir', default=os.path.join(ROOT, 'results'), help='where bench.json and bench.md go')
p.add_argument('--seed', type=int, default=0)
args = p.parse_args()
args.reps = args.reps or (3 if args.quick else 5)
ONLY = [s.strip() for s in args.only.split(',') if s.strip()]
for s in ONLY:
    if s not in ('sample', 'sft', 'dpo', 'rl'):
        p.error(f"--only: unknown benchmark {s!r}")
# steps per block (per side, per rep); one warm-up step per side before the first block
STEPS = dict(sample=2, sft=2, dpo=2, rl=1) if args.quick else dict(sample=4, sft=4, dpo=4, rl=3)

# before torch is imported: the thread count, and nothing may reach the network
os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(args.threads)
os.environ.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', TRANSFORMERS_OFFLINE='1', TQDM_DISABLE='1',
                  TOKENIZERS_PARALLELISM='false', HF_HUB_DISABLE_TELEMETRY='1', WANDB_DISABLED='true')
warnings.filterwarnings('ignore')

import torch  # noqa: E402

torch.set_num_threads(args.threads)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
import model as M  # noqa: E402
import train_mle  # noqa: E402  (lm_loss; importing a stage parses no flags)
from profile_rl import RL, median, rl_setup, rloo_step, profile, markdown as rl_markdown  # noqa: E402

try:
    import datasets
    import transformers
    import trl
    from transformers import (GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel,
                              PreTrainedTokenizerFast, TrainerCallback)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
except ImportError as e:
    sys.exit(f"error: the bench needs its peer packages ({e.name} is missing): pip install -r bench/requirements.txt")
transformers.logging.set_verbosity_error()
datasets.disable_progress_bars()

V = M.GPTConfig().vocab_size
EOS = V - 1
TMP = tempfile.mkdtemp(prefix='bench_')


def log(msg):
    print(msg, flush=True)


def load():
    return round(os.getloadavg()[0], 2)


# -----------------------------------------------------------------------------
# The same model on both sides

def hf_config(**kw):
    c = M.GPTConfig()
    return GPT2Config(vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
                      n_head=c.n_head, activation_function='gelu', resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      layer_norm_epsilon=1e-5, tie_word_embeddings=True, bos_token_id=EOS, eos_token_id=EOS,
                      pad_token_id=EOS, **kw)


def to_hf(gpt):
    """GPT2LMHeadModel (or GPT2ForSequenceClassification for a reward model) with the repo model's weights.
    HF's Conv1D stores (in, out): the repo's nn.Linear weights go in transposed."""
    rm = gpt.score_head is not None
    hf = (GPT2ForSequenceClassification(hf_config(num_labels=1, id2label=None, label2id=None)) if rm
          else GPT2LMHeadModel(hf_config()))
    sd = {'wte.weight': gpt.wte.weight, 'wpe.weight': gpt.wpe.weight,
          'ln_f.weight': gpt.ln_f.weight, 'ln_f.bias': gpt.ln_f.bias}
    for i, b in enumerate(gpt.h):
        for name, mod in (('ln_1', b.ln_1), ('ln_2', b.ln_2)):
            sd[f'h.{i}.{name}.weight'], sd[f'h.{i}.{name}.bias'] = mod.weight, mod.bias
        for name, lin in (('attn.c_attn', b.attn.c_attn), ('attn.c_proj', b.attn.c_proj),
                          ('mlp.c_fc', b.mlp[0]), ('mlp.c_proj', b.mlp[2])):
            sd[f'h.{i}.{name}.weight'], sd[f'h.{i}.{name}.bias'] = lin.weight.t(), lin.bias
    missing, unexpected = hf.transformer.load_state_dict({k: v.detach().clone().contiguous() for k, v in sd.items()})
    assert not missing and not unexpected, (missing, unexpected)
    if rm:  # HF's score head has no bias; the repo's is initialised to 0
        hf.score.weight.data.copy_(gpt.score_head.weight.detach())
    else:
        hf.tie_weights()
    return hf


def check_same_function(gpt, hf):
    """Max |logit difference| between the repo's model and its HF copy on random tokens."""
    x = torch.randint(0, EOS, (4, M.GPTConfig().block_size), generator=torch.Generator().manual_seed(1))
    gpt_mode, hf_mode = gpt.training, hf.training
    gpt.eval(), hf.eval()
    with torch.no_grad():
        if gpt.score_head is not None:
            d = (hf(input_ids=x).logits[:, 0] - gpt(x)[:, -1]).abs().max().item()  # no pad in x: last position
        else:
            d = (hf(input_ids=x).logits - gpt(x)).abs().max().item()
    gpt.train(gpt_mode), hf.train(hf_mode)
    return d


def tokenizer():
    """A word-level tokenizer where id i <-> 't<i>' and EOS <-> '<|endoftext|>': TRL needs one to read its
    text datasets, and this one maps our token ids through text and back unchanged."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    vocab = {f't{i}': i for i in range(V - 1)}
    vocab['<|endoftext|>'] = EOS
    tk = Tokenizer(models.WordLevel(vocab, unk_token='<|endoftext|>'))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token='<|endoftext|>', pad_token='<|endoftext|>')


def text(ids):
    return ' '.join(f't{i}' for i in ids.tolist())


# -----------------------------------------------------------------------------
# Timing

def alternate(repo_step, peer_step, reps, n, unit):
    """Warm up each side once, then `reps` blocks of n steps per side, alternating step by step. Returns the
    per-rep throughputs (units/s) of each side. A step function returns how many units it did."""
    repo_step(), peer_step()
    repo, peer = [], []
    for r in range(reps):
        tr = tp = ur = up = 0.0
        for i in range(n):
            order = ((repo_step, 'r'), (peer_step, 'p')) if (r + i) % 2 == 0 else ((peer_step, 'p'), (repo_step, 'r'))
            for fn, side in order:
                t0 = time.perf_counter()
                u = fn()
                dt = time.perf_counter() - t0
                if side == 'r':
                    tr, ur = tr + dt, ur + u
                else:
                    tp, up = tp + dt, up + u
        repo.append(ur / tr)
        peer.append(up / tp)
        log(f"  rep {r + 1}/{reps}: repo {repo[-1]:.1f} {unit}, peer {peer[-1]:.1f} {unit}, load {load()}")
    return repo, peer


class Interleave(TrainerCallback):
    """Times a TRL trainer's steady-state steps and runs one repo step beside each of them, alternately just
    after the trainer's step (on_step_end) and just before the next one (on_step_begin), so the two sides
    alternate A B B A ... inside one trainer.train(). A trainer step = the time between two on_step_end calls
    (its batch fetch and collation, forward, loss, backward, clip, optimiser, scheduler, metrics, its own
    callbacks), less the time spent here running the repo's step."""

    def __init__(self, repo_step, warmup, reps, n, units_per_step):
        self.repo_step, self.warmup, self.reps, self.n, self.u = repo_step, warmup, reps, n, units_per_step
        self.peer_dt, self.repo_dt, self.repo_u, self.threads = [], [], [], set()
        self.mark, self.inside = None, 0.0

    def _repo(self):
        t0 = time.perf_counter()
        self.repo_u.append(self.repo_step())
        self.repo_dt.append(time.perf_counter() - t0)
        return time.perf_counter() - t0

    def on_train_begin(self, args, state, control, **kw):
        self.mark = time.perf_counter()

    def on_step_begin(self, args, state, control, **kw):
        j = state.global_step + 1 - self.warmup  # the timed step about to run, 1-based (<= 0: warm-up)
        if j > 0 and j % 2 == 0:
            self.inside += self._repo()

    def on_step_end(self, args, state, control, **kw):
        now = time.perf_counter()
        self.threads.add(torch.get_num_threads())
        j = state.global_step - self.warmup
        if j > 0:
            self.peer_dt.append(now - self.mark - self.inside)
            if j % 2 == 1:
                self._repo()
            if j % self.n == 0:
                log(f"  rep {j // self.n}/{self.reps}: repo {sum(self.repo_u[-self.n:]) / sum(self.repo_dt[-self.n:]):.1f}, "
                    f"peer {self.n * self.u / sum(self.peer_dt[-self.n:]):.1f}, load {load()}")
        self.inside = 0.0
        self.mark = time.perf_counter()

    def result(self):
        n = self.n
        repo = [sum(self.repo_u[i:i + n]) / sum(self.repo_dt[i:i + n]) for i in range(0, len(self.repo_dt), n)]
        peer = [n * self.u / sum(self.peer_dt[i:i + n]) for i in range(0, len(self.peer_dt), n)]
        return repo, peer


def trl_common(out, **kw):
    """TrainingArguments that make TRL do the same arithmetic as the repo on the CPU: fp32 (TRL defaults to bf16),
    no gradient checkpointing (TRL defaults to it), torch AdamW without fusion, clip 1, no logging/saving/eval."""
    return dict(output_dir=out, use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
                optim='adamw_torch', adam_beta1=0.9, adam_beta2=0.95, max_grad_norm=1.0, weight_decay=0.0,
                report_to='none', save_strategy='no', eval_strategy='no', logging_steps=10 ** 9,
                disable_tqdm=True, dataloader_num_workers=0, seed=args.seed, **kw)


def run_trainer(trainer, cb):
    for c in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(c)
    trainer.train()
    return cb.result()


# -----------------------------------------------------------------------------
# 1. sampling

def bench_sample(reps, n):
    B, P, T = 64, 8, 32
    torch.manual_seed(args.seed + 1)
    gpt = M.GPT(M.GPTConfig())
    hf = to_hf(gpt).eval()
    diff = check_same_function(gpt, hf)
    prompts = torch.randint(0, EOS, (B, P), generator=torch.Generator().manual_seed(args.seed + 4))
    gen = torch.Generator().manual_seed(args.seed)
    attn = torch.ones_like(prompts)

    def repo():
        y, m = M.sample(gpt, prompts, T, eos=-1, temperature=1.0, generator=gen)  # eos -1: never stops early
        assert y.shape == (B, T)
        return B * T

    def peer():
        out = hf.generate(input_ids=prompts, attention_mask=attn, do_sample=True, top_k=0, top_p=1.0,
                          temperature=1.0, max_new_tokens=T, min_new_tokens=T)
        assert out.shape == (B, P + T)
        return B * T

    r, q = alternate(repo, peer, reps, n, 'tok/s')
    return dict(repo=r, peer=q, max_logit_diff=diff, unit='tokens/s', steps_per_rep=n,
                repo_label='model.sample (KV cache)', peer_label=f'transformers {transformers.__version__} '
                'GPT2LMHeadModel.generate(do_sample, top_k=0, top_p=1, min_new_tokens=32)')


# -----------------------------------------------------------------------------
# 2. SFT

def bench_sft(reps, n):
    Bsz, T, lr = 32, M.GPTConfig().block_size, 2e-3
    torch.manual_seed(args.seed + 1)
    gpt = M.GPT(M.GPTConfig())
    hf = to_hf(gpt).train()
    diff = check_same_function(gpt, hf)
    opt_r = gpt.configure_optimizer(lr, weight_decay=0.1)
    # the peer: a plain loop with the same optimiser (same decay groups, betas) and clipping
    params = [q for q in hf.parameters() if q.requires_grad]
    opt_p = torch.optim.AdamW([{'params': [q for q in params if q.dim() >= 2], 'weight_decay': 0.1},
                               {'params': [q for q in params if q.dim() < 2], 'weight_decay': 0.0}],
                              lr=lr, betas=(0.9, 0.95))
    stream = torch.randint(0, V, (200_000,), generator=torch.Generator().manual_seed(args.seed + 5))
    state = {'r': 0, 'p': 0}

    def batch(side):  # train_mle.py's packing: random windows of block_size + 1 tokens
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + state[side])
        state[side] += 1
        start = torch.randint(stream.numel() - T - 1, (Bsz,), generator=g)
        return torch.stack([stream[i:i + T + 1] for i in start])

    def repo():
        gpt.train()
        x = batch('r')
        loss = train_mle.lm_loss(gpt, x)
        M.train_step(gpt, opt_r, loss, M.cosine_lr(state['r'], 1000, lr))
        loss.item()
        return Bsz * T

    hf_logits = lambda idx: hf(input_ids=idx).logits

    def peer():
        hf.train()
        x = batch('p')
        loss = train_mle.lm_loss(hf_logits, x)
        for g in opt_p.param_groups:
            g['lr'] = M.cosine_lr(state['p'], 1000, lr)
        opt_p.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        opt_p.step()
        loss.item()
        return Bsz * T

    r, q = alternate(repo, peer, reps, n, 'tok/s')
    return dict(repo=r, peer=q, max_logit_diff=diff, unit='tokens/s', steps_per_rep=n,
                repo_label='model.GPT + train_mle.lm_loss + M.train_step',
                peer_label='GPT2LMHeadModel, plain PyTorch loop (same loss, AdamW, clip)')


# -----------------------------------------------------------------------------
# 3. DPO

def bench_dpo(reps, n):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    Bsz, P, C, beta, lr = 32, 8, 24, 0.1, 1e-4  # train_mle.py --loss dpo's defaults
    steps = 1 + reps * n
    N = Bsz * (steps + 2)
    g = torch.Generator().manual_seed(args.seed + 6)
    prompts = torch.randint(0, EOS, (N, P), generator=g)
    chosen = torch.cat([torch.randint(0, EOS, (N, C - 1), generator=g), torch.full((N, 1), EOS)], 1)
    rejected = torch.cat([torch.randint(0, EOS, (N, C - 1), generator=g), torch.full((N, 1), EOS)], 1)
    torch.manual_seed(args.seed + 1)
    gpt = M.GPT(M.GPTConfig())
    ref = M.frozen(M.GPT(M.GPTConfig()))
    ref.load_state_dict(gpt.state_dict())
    hf = to_hf(gpt)
    diff = check_same_function(gpt, hf)

    # repo: train_mle.py --loss dpo (reference log-probs once, then epoch_batch / pair_logprobs / dpo_loss / train_step)
    ones = torch.ones(N, C)
    d = {'prompts': prompts, 'chosen': chosen, 'chosen_mask': ones, 'rejected': rejected, 'rejected_mask': ones,
         'r_chosen': torch.ones(N), 'r_rejected': torch.zeros(N)}
    train = M.with_ref_logprobs(d, ref, 'cpu')
    opt = gpt.configure_optimizer(lr, weight_decay=0.0)
    state = {'step': 0}

    def repo():
        step = state['step']
        gpt.train()
        idx = M.epoch_batch(N, Bsz, step, args.seed)
        b = {k: v[idx] for k, v in train.items()}
        lp_c, lp_r = M.pair_logprobs(gpt, b)
        loss, r_c, r_r = M.dpo_loss(lp_c, lp_r, b['ref_chosen'], b['ref_rejected'], beta)
        M.dpo_stats(r_c, r_r)  # logged every step, as in train_mle.py
        M.train_step(gpt, opt, loss, M.cosine_lr(step, 1000, lr))
        loss.item()
        state['step'] += 1
        return idx.numel()

    # peer: DPOTrainer on the same pairs as text; EOS is appended by TRL to the 23 other completion tokens
    ds = Dataset.from_dict({'prompt': [text(x) + ' ' for x in prompts],
                            'chosen': [text(y[:-1]) for y in chosen], 'rejected': [text(y[:-1]) for y in rejected]})
    repo()  # the repo's warm-up step (the trainer's first step is its own warm-up)
    cb = Interleave(repo, 1, reps, n, Bsz)
    cfg = DPOConfig(**trl_common(os.path.join(TMP, 'dpo'), per_device_train_batch_size=Bsz, max_steps=steps,
                                 learning_rate=lr, beta=beta, precompute_ref_log_probs=True, max_length=None,
                                 lr_scheduler_type='cosine', warmup_steps=0))
    t0 = time.perf_counter()
    trainer = DPOTrainer(model=hf, args=cfg, train_dataset=ds, processing_class=tokenizer(), callbacks=[cb])
    setup = time.perf_counter() - t0
    row = trainer.train_dataset[0]
    assert row['prompt_ids'] == prompts[0].tolist() and row['chosen_ids'] == chosen[0].tolist(), row
    # where TRL's step goes: wrap what its training_step calls (instance attributes shadow the methods)
    parts = {'compute_loss': [], 'training_step': []}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            out = fn(*a, **kw)
            parts[name].append(time.perf_counter() - t)
            return out
        return wrapper
    trainer.compute_loss = timed('compute_loss', trainer.compute_loss)
    trainer.training_step = timed('training_step', trainer.training_step)
    r, q = run_trainer(trainer, cb)
    fwd, ts = parts['compute_loss'][1:], parts['training_step'][1:]  # [1:]: the warm-up step
    breakdown = {'forward, loss and per-step metrics (compute_loss)': median(fwd),
                 'backward': median([a - b for a, b in zip(ts, fwd)]),
                 'clip, AdamW, scheduler, batch fetch + collation, trainer overhead': median(cb.peer_dt) - median(ts),
                 'whole step': median(cb.peer_dt)}
    return dict(repo=r, peer=q, max_logit_diff=diff, unit='pairs/s', steps_per_rep=n, peer_setup_s=setup,
                peer_threads=sorted(cb.threads), peer_breakdown_s=breakdown,
                repo_label='M.pair_logprobs + M.dpo_loss + M.train_step (precomputed ref)',
                peer_label=f'trl {trl.__version__} DPOTrainer(precompute_ref_log_probs=True)')


# -----------------------------------------------------------------------------
# 4. RLOO

def bench_rl(reps, n):
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer
    s = rl_setup(args.seed)
    B, k = RL['batch_size'], RL['k']
    hf = to_hf(s['policy'])
    hf_rm = to_hf(s['rm'])
    diff = max(check_same_function(s['policy'], hf), check_same_function(s['rm'], hf_rm))
    hf.save_pretrained(os.path.join(TMP, 'policy'))  # TRL builds its reference model from the policy's path
    hf.config._name_or_path = os.path.join(TMP, 'policy')
    state = {'step': 0}
    lengths = []

    def repo():
        parts = {}
        u = rloo_step(s, state['step'], parts)
        lengths.append(parts['completion_length'])
        state['step'] += 1
        return u

    steps = 1 + reps * n
    ds = Dataset.from_dict({'prompt': [text(x) + ' ' for x in s['prompts'][:max(256, B * steps)]]})
    repo()
    cb = Interleave(repo, 1, reps, n, B * k)
    cfg = RLOOConfig(**trl_common(os.path.join(TMP, 'rloo'), per_device_train_batch_size=B * k, num_generations=k,
                                  generation_batch_size=B * k, max_completion_length=RL['completion_len'],
                                  max_steps=steps, learning_rate=RL['lr'], beta=RL['beta'],
                                  temperature=RL['temperature'], top_k=0, top_p=1.0, num_iterations=1,
                                  lr_scheduler_type='cosine', warmup_steps=0))
    t0 = time.perf_counter()
    trainer = RLOOTrainer(model=hf, reward_funcs=hf_rm, args=cfg, train_dataset=ds, processing_class=tokenizer(),
                          reward_processing_classes=tokenizer(), callbacks=[cb])
    setup = time.perf_counter() - t0
    # where TRL's step goes: wrap the parts it calls (instance attributes shadow the methods)
    peer_parts, peer_len = {}, []

    def timed(name, fn, lengths=None):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            out = fn(*a, **kw)
            peer_parts.setdefault(name, []).append(time.perf_counter() - t)
            if lengths is not None:  # _generate returns (prompt_ids, completion_ids, completions)
                lengths.append(sum(len(c) for c in out[1]) / len(out[1]))
            return out
        return wrapper
    trainer._generate = timed('sampling (tokenize, generate, decode)', trainer._generate, peer_len)
    trainer._calculate_rewards = timed('reward model (re-tokenize text + forward)', trainer._calculate_rewards)
    trainer._generate_and_score_completions = timed('whole generate-and-score', trainer._generate_and_score_completions)
    r, q = run_trainer(trainer, cb)
    gs, smp, rwd = (peer_parts[k][1:] for k in ('whole generate-and-score', 'sampling (tokenize, generate, decode)',
                                                 'reward model (re-tokenize text + forward)'))  # [1:]: warm-up
    breakdown = {'sampling (tokenize, generate, decode to text)': median(smp),
                 'scoring (old-policy + reference log-probs, reward model, advantages, metrics)':
                     median([a - b for a, b in zip(gs, smp)]),
                 '  of which the reward model (text -> tokens -> forward)': median(rwd),
                 'update (policy forward + entropy, loss, backward, clip, AdamW) and trainer overhead':
                     median(cb.peer_dt) - median(gs),
                 'whole step': median(cb.peer_dt)}
    return dict(repo=r, peer=q, max_logit_diff=diff, unit='samples/s', steps_per_rep=n, peer_setup_s=setup,
                peer_threads=sorted(cb.threads), peer_breakdown_s=breakdown,
                repo_mean_completion_len=sum(lengths) / len(lengths),
                peer_mean_completion_len=sum(peer_len) / len(peer_len) if peer_len else None,
                repo_label='train_rl.py RLOO step (profile_rl.rloo_step)',
                peer_label=f'trl {trl.__version__} RLOOTrainer(num_generations=4, beta=0.1)')


# -----------------------------------------------------------------------------

NAMES = {'sample': 'sampling (64 x 8-token prompts, 32 new tokens)', 'sft': 'SFT training (32 x 64 tokens)',
         'dpo': 'DPO training (32 pairs, 8+24 tokens)', 'rl': 'RLOO step (16 prompts x 4 samples, 24 tokens)'}


def table(results):
    lines = ['| benchmark | unit | repo (median) | peer (median) | repo / peer | reps x steps | peer |',
             '|---|---|---|---|---|---|---|']
    for key, r in results.items():
        lines.append(f"| {NAMES[key]} | {r['unit']} | {r['repo_median']:.1f} | {r['peer_median']:.1f} | "
                     f"{r['ratio']:.2f}x | {len(r['repo'])} x {r['steps_per_rep']} | {r['peer_label']} |")
    return '\n'.join(lines)


def main():
    t_start = time.time()
    meta = {'date': time.strftime('%Y-%m-%d %H:%M:%S'), 'reps': args.reps, 'quick': args.quick,
            'threads': args.threads, 'steps_per_rep': {k: STEPS[k] for k in ONLY},
            'uptime_before': subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip(),
            'cpus': os.cpu_count(), 'machine': platform.machine(), 'python': platform.python_version(),
            'versions': {'torch': torch.__version__, 'transformers': transformers.__version__,
                         'trl': trl.__version__, 'datasets': datasets.__version__},
            'model': {k: v for k, v in vars(M.GPTConfig()).items()}}
    try:
        import accelerate
        meta['versions']['accelerate'] = accelerate.__version__
    except ImportError:
        pass
    log(f"bench: {args.reps} reps, {args.threads} threads, {meta['uptime_before']}")
    if args.threads > 1 and os.getloadavg()[0] > os.cpu_count() - 0.5:
        log(f"warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: with --threads {args.threads} "
            "the OpenMP threads wait on each other at every op and timings slow down and scatter by 10x or more; --threads 1 is stable")
    results = {}
    for key in ONLY:
        log(f"{NAMES[key]}:")
        l0 = load()
        t0 = time.time()
        r = {'sample': bench_sample, 'sft': bench_sft, 'dpo': bench_dpo, 'rl': bench_rl}[key](args.reps, STEPS[key])
        r['repo_median'], r['peer_median'] = median(r['repo']), median(r['peer'])
        r['ratio'] = r['repo_median'] / r['peer_median']
        r['load_before'], r['load_after'], r['wall_s'] = l0, load(), round(time.time() - t0, 1)
        results[key] = r
    md = [table(results)]
    rl_profile = None
    if not args.no_profile:
        log("repo RLOO step breakdown:")
        rl_profile = profile(reps=max(5, 2 * args.reps + 1) if not args.quick else 5, log=log)
        md.append(rl_markdown(rl_profile))
    for key, what in (('dpo', 'DPO step (DPOTrainer'), ('rl', 'RLOO step (RLOOTrainer')):
        if key in results:
            b = results[key]['peer_breakdown_s']
            md.append(f'| part of one {what}, medians) | s |\n|---|---|\n' +
                      '\n'.join(f'| {k} | {v:.3f} |' for k, v in b.items()))
    meta['uptime_after'] = subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()
    meta['wall_s'] = round(time.time() - t_start, 1)
    note = (f"{args.reps} reps, {args.threads} thread(s); {platform.machine()}, {os.cpu_count()} CPUs; "
            f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}. "
            f"Load: `{meta['uptime_before']}` before, `{meta['uptime_after']}` after. "
            f"Ratio > 1: the repo is faster. Max |logit difference| between the repo's models and their HF copies: "
            f"{max(r['max_logit_diff'] for r in results.values()) if results else 0:.1e}. Per-benchmark load (1-min average, before/after): " +
            ', '.join(f"{k} {r['load_before']}/{r['load_after']}" for k, r in results.items()) + '.')
    text_md = '\n\n'.join(md + [note])
    print('\n' + text_md)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, 'bench.json'), 'w') as f:
        json.dump({'meta': meta, 'results': results, 'rl_profile': rl_profile}, f, indent=1)
    with open(os.path.join(args.out_dir, 'bench.md'), 'w') as f:
        f.write('# Benchmark: this repo vs transformers + trl\n\n`python bench/bench.py' +
                (' --quick' if args.quick else '') + f' --reps {args.reps} --threads {args.threads}`\n\n' +
                text_md + '\n\n## What is timed\n\n```\n' + __doc__[__doc__.index('What is timed.'):].strip() + '\n```\n')
    log(f"wrote {os.path.join(args.out_dir, 'bench.json')} and bench.md ({meta['wall_s']:.0f} s)")


if __name__ == '__main__':
    try:
        main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
