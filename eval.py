"""
The judge. The only file that knows the gold verifiers: it plays the paper's human labellers (label) and its
gpt-4o judge (score), exactly, since here the verifier is a known function of the completion.

  python eval.py label --policy out/sft --task sentiment --n_pairs 2000 --out out/prefs.pt
  python eval.py score out/sft out/dpo out/rloo --task sentiment --json out/eval.json
  python eval.py score out/sft out/dpo --task sentiment --best_of 16 --rm out/rm --json out/eval_bon.json
  python eval.py prefs out/rm --prefs out/prefs.pt          # held-out preference likelihood (also a dpo run)
  python eval.py table out/eval*.json
  python eval.py frontier --val out/val_*.json --test out/test_*.json --out out/frontier.png   # choose on val

Tasks (a gold verifier + a completion length; the dict travels inside every preference file and checkpoint):
  sentiment  VADER compound score of the completion text, in [-1, 1]; 24-token completions
  short      the same verifier on 2-token completions: no horizon, so generating is as easy as verifying
  overlap    ROUGE-L F1 (token LCS) against the human reference completion; 24 tokens. The verifier must
             know the answer, so verifying is as hard as generating.
"""
import argparse
import json
import math
import os
import re
import time
from collections import Counter

import torch
import torch.nn.functional as F
from tqdm import tqdm

import model as M

TASKS = {'sentiment': {'name': 'sentiment', 'prompt_len': 8, 'completion_len': 24},
         'short': {'name': 'short', 'prompt_len': 8, 'completion_len': 2},
         'overlap': {'name': 'overlap', 'prompt_len': 8, 'completion_len': 24}}
POLICY_STAGES = ('sft', 'dpo', 'rl')
KL_ESTIMATOR = ("k1: mean over the policy's own samples of sum_t [log pi(y_t|x,y<t) - log pi_ref(y_t|x,y<t)] "
                "(unbiased for KL(pi||pi_ref) over completions of at most completion_len tokens; both at the "
                "sampling temperature)")
OVERLAP_NOTE = ("overlap: the human reference completion is the verifier's answer key (ROUGE-L 1 against itself), so "
                "win vs human is undefined (n/a); compare the gold reward, ROUGE-L F1, as the paper does")
CI = 'mean +- 1.96 * std / sqrt(n_prompts): normal approximation over per-prompt means, 95%'

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
sub = p.add_subparsers(dest='cmd', required=True, metavar='{label,score,prefs,table,frontier}')


def common(q):
    q.add_argument('--device', default='auto', help='auto (cuda, then mps, then cpu), or a torch device')
    q.add_argument('--batch_size', type=int, default=256,
                   help='sequences per forward pass / sampling call (the samples depend on it: keep it fixed)')
    q.add_argument('--seed', type=int, default=0, help='seeds prompts, samples and labels: same command, same numbers')


q = sub.add_parser('label', help='sample pairs from a policy and label them with the gold verifier')
q.add_argument('--policy', default='out/sft', help='the sampling policy (sft, dpo or rl checkpoint)')
q.add_argument('--task', default='sentiment', choices=sorted(TASKS), help='gold verifier + completion length')
q.add_argument('--n_pairs', type=int, default=2000, help='training pairs (one per distinct train prompt, see --max_per_prompt)')
q.add_argument('--n_val', type=int, default=500, help='validation pairs, drawn from the val prompts likewise')
q.add_argument('--tau', type=float, default=0.1,
               help='Bradley-Terry temperature: P(a beats b) = sigmoid((r_a - r_b)/tau). VADER compound lies in '
                    '[-1, 1]; tau 0.1 labels a 0.2 difference correctly ~88%% of the time (a reasonably '
                    'reliable but noisy human). 0 = deterministic: the higher reward wins, exact ties by a '
                    'seeded coin')
q.add_argument('--agreement', type=float, default=None,
               help='instead of --tau: the tau at which labels agree with the gold order on this share of the '
                    'untied train pairs (in expectation), so tasks with small gold gaps are not mostly noise')
q.add_argument('--drop_ties', action='store_true',
               help='keep only pairs whose gold rewards differ (a tie carries no preference); --n_pairs and '
                    '--n_val then count untied pairs, and the tie rate is printed and stored')
q.add_argument('--max_per_prompt', type=int, default=1,
               help='pairs drawn per prompt at most (each a fresh pair of samples), for tasks whose pairs mostly tie')
q.add_argument('--pair', default='samples', choices=['samples', 'human'],
               help="a pair is two policy samples (on-policy), or the first of them and the prompt's human "
                    "continuation (off-policy, the narrow-data contrast of H4)")
q.add_argument('--out', default='out/prefs.pt', help='the preference file to write (atomically)')
q.add_argument('--json', default=None, help='also write the statistics printed below (tie rate, tau, agreement)')
q.add_argument('--no_tqdm', action='store_true', help='no progress bar (it counts the pairs kept)')
common(q)

q = sub.add_parser('score', help='gold reward, win rates, KL, length and diversity of policies on test prompts')
q.add_argument('policies', nargs='+', help='policy out dirs (or ckpt.pt files); each is named by its basename')
q.add_argument('--task', default='sentiment', choices=sorted(TASKS), help='gold verifier + completion length')
q.add_argument('--json', default='out/eval.json', help='where the metrics go (written atomically)')
q.add_argument('--ref', default=None,
               help='the reference (SFT) policy for KL and "win vs SFT"; default: the first listed sft policy, '
                    'else the reference recorded in the first listed checkpoint that has one')
q.add_argument('--n_prompts', type=int, default=0, help='prompts used (0 = all of them)')
q.add_argument('--split', default='test', choices=['test', 'val'],
               help="'test' for results; 'val' for tuning, so that choices never see the test prompts")
q.add_argument('--samples', type=int, default=2, help='samples per prompt per policy')
q.add_argument('--beta', type=float, default=0.1, help='weight of KL in the reported gold reward - beta*KL')
q.add_argument('--temperature', type=float, default=1.0, help='sampling temperature (> 0), also used for KL')
q.add_argument('--best_of', type=int, default=0, help='also report best-of-n of each policy by --rm for n = 1, 2, 4, ..., N (N >= 2)')
q.add_argument('--rm', nargs='+', default=None,
               help='reward checkpoint(s) that pick the best of N: an RM, or a dpo policy (its implicit reward '
                    'beta*log(pi/pi_ref)); several rerank the same N samples')
q.add_argument('--no_tqdm', action='store_true', help='no progress bar (it counts the samples drawn)')
common(q)

q = sub.add_parser('prefs', help='held-out preference likelihood and accuracy of a reward model or a dpo policy')
q.add_argument('ckpt', help="an rm checkpoint, or a dpo policy (implicit reward beta*log(pi/pi_ref))")
q.add_argument('--prefs', default='out/prefs.pt', help='preference file from eval.py label')
q.add_argument('--split', default='val', choices=['val', 'train'], help="which split of the file ('val' = held out)")
q.add_argument('--json', default=None, help='also write the numbers to this JSON file')
common(q)

q = sub.add_parser('table', help='markdown table of one or more score JSON files')
q.add_argument('files', nargs='+', help='JSON files written by eval.py score')

q = sub.add_parser('frontier', help='gold reward against KL along runs: the test curves (PNG) and, per KL budget, '
                   'each method\'s checkpoint chosen on val and scored on test (markdown)')
q.add_argument('--val', nargs='+', required=True, help='score JSONs of the checkpoints on the val prompts')
q.add_argument('--test', nargs='+', required=True, help='score JSONs of the same checkpoints on the test prompts')
q.add_argument('--budgets', type=float, nargs='+', default=[3, 10, 30], help='KL budgets, nats per completion')
q.add_argument('--out', default='frontier.png', help='the PNG to write')


def main(argv=None):
    args = p.parse_args(argv)
    {'label': label, 'score': score, 'prefs': prefs, 'table': table, 'frontier': frontier}[args.cmd](args)


# -----------------------------------------------------------------------------
# The gold verifiers.

_VADER = []


def vader(texts):
    """VADER compound sentiment of each text, in [-1, 1] (rule-based, offline, deterministic)."""
    if not _VADER:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        _VADER.append(SentimentIntensityAnalyzer())
    return [_VADER[0].polarity_scores(t)['compound'] for t in texts]


def lcs_len(a, b):
    """Length of the longest common subsequence of two lists, by the textbook DP (one row at a time)."""
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0  # row[j-1] of the previous row
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l_f1(a, b):
    """ROUGE-L F1 = 2PR/(P+R) with P = LCS/len(a), R = LCS/len(b), i.e. 2*LCS/(len(a)+len(b)); 0 if empty."""
    if not a or not b:
        return 0.0
    return 2.0 * lcs_len(a, b) / (len(a) + len(b))


def real_tokens(ids, mask, eos):
    """A completion's tokens without EOS and padding."""
    return [int(t) for t, m in zip(ids.tolist(), mask.tolist()) if m and t != eos]


def in_place(prompt, completion):
    """A completion's text as a reader meets it. One that starts mid-word (the prompt ends in a letter, the
    completion starts with one) gets that word's start joined on: about a quarter of completions do, and read
    alone a suffix such as "ly" of "treat|ly" is VADER's slang "ly" (love you, +2.6), a reward for nonsense."""
    head = re.search(r'[A-Za-z]*$', prompt).group()
    return head + completion if head and completion[:1].isalpha() else completion


def texts_in_place(enc, prompts, completions, mask):
    """Each completion's text as it reads after its prompt: what VADER scores."""
    return [in_place(M.decode(enc, x), M.decode(enc, c, m)) for x, c, m in zip(prompts, completions, mask)]


def gold_rewards(task, enc, prompts, completions, mask, refs=None, ref_mask=None):
    """The gold reward of each completion (N,) float: VADER of its text read in place after its prompt
    (sentiment, short) or ROUGE-L F1 of its token ids against the human reference completion of the same
    prompt (overlap). prompts (N, P): row i is completion i's prompt."""
    completions, mask = completions.cpu(), mask.cpu()
    if prompts.size(0) != completions.size(0):
        raise ValueError("gold_rewards needs one prompt per completion")
    if task['name'] in ('sentiment', 'short'):
        r = vader(texts_in_place(enc, prompts, completions, mask))
    elif task['name'] == 'overlap':
        if refs is None or refs.size(0) != completions.size(0):
            raise ValueError("overlap needs one reference completion per completion")
        refs, ref_mask = refs.cpu(), ref_mask.cpu()
        r = [rouge_l_f1(real_tokens(c, m, enc.eos), real_tokens(rc, rm, enc.eos))
             for c, m, rc, rm in zip(completions, mask, refs, ref_mask)]
    else:
        raise ValueError(f"unknown task {task['name']!r}")
    return torch.tensor(r, dtype=torch.float)


# -----------------------------------------------------------------------------
# Checks and loading shared by the subcommands.

def get_task(name):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: one of {', '.join(sorted(TASKS))}")
    return dict(TASKS[name])


def check_task(ckpt, task, path, required=False):
    """A checkpoint trained for one task must not be evaluated on another (sft checkpoints have task None)."""
    have = ckpt.get('task')
    if (have is None and required) or (have is not None and have != task):
        raise M.CheckpointError(f"{path} was trained for task {task_str(have)}, not {task_str(task)}")


def task_str(task):
    if not isinstance(task, dict):
        return repr(task)
    return (f"{task.get('name')!r} ({task.get('prompt_len')}-token prompts, "
            f"{task.get('completion_len')}-token completions)")


def load_model(ckpt, path, device, task=None):
    """A frozen model (eval mode, no grads) from a loaded checkpoint; checks the task's sequences fit."""
    try:
        model = M.frozen(M.model_from_checkpoint(ckpt, device))
    except (RuntimeError, KeyError, TypeError) as e:
        why = str(e).splitlines()[0][:120] if str(e) else ''
        raise M.CheckpointError(f"{path}: cannot build the model ({type(e).__name__}: {why})")
    if task is not None and task['prompt_len'] + task['completion_len'] > model.cfg.block_size:
        raise M.CheckpointError(f"{path}: block_size {model.cfg.block_size} is too short for task {task_str(task)}")
    return model


def ckpt_file(path):
    return os.path.realpath(os.path.join(path, 'ckpt.pt') if os.path.isdir(path) else path)


def run_name(path):
    """A policy is named by its out dir's basename (out/dpo/ckpt.pt and out/dpo are both 'dpo'); a snapshot
    along training by its run and file ('out/dpo/step_125.pt' is 'dpo/step_125')."""
    path = os.path.normpath(path)
    if not path.endswith('.pt'):
        return os.path.basename(path)
    run, file = os.path.basename(os.path.dirname(path)), os.path.basename(path)
    return run if file == 'ckpt.pt' else f'{run}/{file[:-3]}'


def write_atomic(path, write):
    """write(tmp) then rename: a crash or a bad run never leaves a half-written file in place of a good one."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp'
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=2)
    write_atomic(path, write)


def pick(n_avail, n, seed, what):
    """The first n of a seeded permutation of n_avail prompts (n = 0: all of them)."""
    if n < 0:
        raise ValueError(f"{what}: must be >= 0, got {n}")
    if n > n_avail:
        raise ValueError(f"{what}: asked for {n}, but there are only {n_avail}")
    return torch.randperm(n_avail, generator=torch.Generator().manual_seed(seed))[:n or n_avail]


# -----------------------------------------------------------------------------
# Sampling, log-probs and the statistics.

def generate(model, prompts, samples, completion_len, eos, temperature, seed, device, bs, bar=None):
    """`samples` completions per prompt (rows prompt-major: prompt i owns rows i*samples ... ), sampled in
    batches from a generator seeded with `seed`, so every policy sees the same prompts and the same seed.
    bar: a progress bar to advance by each batch's rows."""
    gen = torch.Generator(device).manual_seed(seed)
    x = prompts.repeat_interleave(samples, 0)
    outs, masks = [], []
    for i in range(0, x.size(0), bs):
        o, m = M.sample(model, x[i:i + bs].to(device), completion_len, eos, temperature=temperature, generator=gen)
        outs.append(o.cpu())
        masks.append(m.cpu())
        if bar is not None:
            bar.update(o.size(0))
    return torch.cat(outs), torch.cat(masks)


@torch.no_grad()
def seq_logprobs(model, prompts, completions, mask, temperature, device, bs):
    """Sequence log-probs sum_t log pi(y_t | x, y<t) of completions (N,), in batches."""
    out = []
    with M.autocast(torch.device(device).type):
        for i in range(0, prompts.size(0), bs):
            lp = M.completion_logprobs(model, prompts[i:i + bs].to(device), completions[i:i + bs].to(device),
                                       mask[i:i + bs].to(device), temperature=temperature)
            out.append(lp.float().sum(1).cpu())
    return torch.cat(out)


@torch.no_grad()
def rewards_in_batches(reward_of, prompts, completions, mask, device, bs):
    """reward_of(prompts, completions, mask) (M.load_reward's) of every row (N,), in batches."""
    out = []
    with M.autocast(torch.device(device).type):
        for i in range(0, prompts.size(0), bs):
            out.append(reward_of(prompts[i:i + bs].to(device), completions[i:i + bs].to(device),
                                 mask[i:i + bs].to(device)).float().cpu())
    return torch.cat(out)


def bt_prob(r_a, r_b, tau):
    """Bradley-Terry: P(a > b) = sigmoid((r_a - r_b)/tau). tau = 0 is the deterministic labeller: the higher
    reward wins and an exact tie is a fair coin."""
    r_a, r_b = r_a.double(), r_b.double()
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    return ((r_a > r_b).double() + 0.5 * (r_a == r_b).double()) if tau == 0 else torch.sigmoid((r_a - r_b) / tau)


def bt_labels(r_a, r_b, tau, generator=None):
    """Bradley-Terry labels: True where a is preferred."""
    return torch.rand(r_a.shape, generator=generator, dtype=torch.double) < bt_prob(r_a, r_b, tau)


def tau_for_agreement(gaps, agreement):
    """The tau at which Bradley-Terry labels agree with the gold order on `agreement` of pairs with these
    gold gaps |r_a - r_b| > 0, in expectation: mean sigmoid(gap/tau) = agreement (it falls as tau grows),
    found by bisection on log tau. One agreement for every task makes their labels equally noisy."""
    gaps = gaps.double()
    if not 0.5 < agreement < 1 or gaps.numel() == 0 or (gaps <= 0).any():
        raise ValueError(f"agreement must lie in (0.5, 1) and the gaps be > 0, got {agreement}")
    lo, hi = math.log(1e-6), math.log(1e3)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if torch.sigmoid(gaps / math.exp(mid)).mean() > agreement else (lo, mid)
    return math.exp((lo + hi) / 2)


def best_of_n(scores, n):
    """Best-of-n: for each row of RM scores (prompts, N samples), the index of the highest-scoring of the first
    n samples (the first on a tie). n = 1 is plain sampling: sample 0."""
    return scores[:, :n].argmax(1)


def win_rate(a, b):
    """1 where a beats b, 0.5 on a tie, 0 otherwise (elementwise, broadcasting)."""
    return (a > b).float() + 0.5 * (a == b).float()


def mean_ci(x):
    """Mean and the half-width of its 95% normal-approximation interval over the rows of x (one per prompt)."""
    x = x.double()
    half = 1.96 * x.std().item() / math.sqrt(x.numel()) if x.numel() > 1 else 0.0
    return x.mean().item(), half


def distinct_2(completions, mask, eos):
    """Unique token bigrams / all bigrams, over the real (non-EOS) tokens of every completion."""
    grams = [g for c, m in zip(completions, mask) for toks in [real_tokens(c, m, eos)] for g in zip(toks, toks[1:])]
    return len(set(grams)) / len(grams) if grams else 0.0


def words(enc, prompts, completions, mask):
    """Lower-cased words of every completion as read in place: what the verifier sees."""
    return [w for t in texts_in_place(enc, prompts, completions, mask) for w in re.findall(r"[a-z']+", t.lower())]


def top_words(enc, prompts, y, m, base, n_base, k=8):
    """The k words a policy uses most beyond the reference policy (base: its word counts over n_base
    completions of the same prompts), as extra uses per 100 completions: what a policy learned to say, and
    where it games the verifier."""
    mine = Counter(words(enc, prompts, y, m))
    extra = {w: 100 * (c / y.size(0) - base[w] / n_base) for w, c in mine.items()}
    return [[w, round(v, 1)] for w, v in sorted(extra.items(), key=lambda wv: -wv[1])[:k] if v > 0]


def shape_stats(completions, mask, eos):
    """Mean length in real tokens (the mask: EOS counted), share ending with EOS, distinct-2."""
    n = mask.sum(1).long()
    last = completions[torch.arange(completions.size(0)), (n - 1).clamp(min=0)]
    ends = ((n > 0) & (last == eos)).float()
    return {'length': n.float().mean().item(), 'eos_rate': ends.mean().item(),
            'distinct_2': distinct_2(completions, mask, eos)}


# -----------------------------------------------------------------------------
# label: the "human" of the paper. Two samples from the policy per prompt, labelled by Bradley-Terry on the gold
# reward. Every prompt is used once, so the val pairs share no prompt with each other or with train.

def label(args):
    task = get_task(args.task)
    if args.n_pairs < 1 or args.n_val < 1:
        raise ValueError(f"--n_pairs and --n_val must be >= 1, got {args.n_pairs} and {args.n_val}")
    if args.tau < 0 or not math.isfinite(args.tau):
        raise ValueError(f"--tau must be a finite number >= 0, got {args.tau}")
    if args.agreement is not None and not 0.5 < args.agreement < 1:
        raise ValueError(f"--agreement must lie strictly between 0.5 and 1, got {args.agreement}")
    if args.max_per_prompt < 1:
        raise ValueError(f"--max_per_prompt must be >= 1, got {args.max_per_prompt}")
    if args.batch_size < 2:
        raise ValueError(f"--batch_size must be >= 2, got {args.batch_size}")
    if os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a directory; give a file name such as out/prefs.pt")
    device = M.get_device(args.device)
    ckpt = M.load_checkpoint(args.policy, stages=POLICY_STAGES)
    check_task(ckpt, task, args.policy)
    vocab, P, C = ckpt['vocab_size'], task['prompt_len'], task['completion_len']
    policy = load_model(ckpt, args.policy, device, task)
    enc = M.get_tokenizer(vocab)
    t0 = time.time()
    gen = torch.Generator(device).manual_seed(args.seed)          # the samples
    coin = torch.Generator().manual_seed(args.seed + 1_000_003)   # the labeller's noise
    with tqdm(total=args.n_pairs + args.n_val, unit='pair', desc='label', disable=args.no_tqdm) as bar:
        draws = {split: draw_pairs(policy, split, n, args.seed + off, flag, task, enc, device, gen, coin, args, bar)
                 for split, n, off, flag in (('train', args.n_pairs, 0, '--n_pairs'),
                                             ('val', args.n_val, 1, '--n_val'))}
    # the labeller's temperature: given, or set so that labels agree with the gold order on --agreement of the
    # untied train pairs in expectation (the same tau then labels the val pairs)
    tr = draws['train']
    gaps = (tr['r_a'] - tr['r_b']).abs()
    tau = args.tau if args.agreement is None else tau_for_agreement(gaps[gaps > 0], args.agreement)
    data = {split: label_pairs(d, tau) for split, d in draws.items()}
    prefs_file = {'kind': 'prefs', 'task': task, 'vocab_size': vocab, 'policy': args.policy, 'tau': tau,
                  'agreement_target': args.agreement, 'drop_ties': args.drop_ties, 'pair': args.pair,
                  'seed': args.seed, **data}

    def write(tmp):  # write, then check it round-trips through the loader every consumer uses
        torch.save(prefs_file, tmp)
        M.load_prefs(tmp, task=task, vocab_size=vocab)
    write_atomic(args.out, write)
    stats = {split: {k: d[k] for k in ('n_pairs', 'n_drawn', 'n_prompts', 'tie_rate', 'agreement')}
             for split, d in data.items()}
    if args.json:
        write_json(args.json, {'task': task, 'seed': args.seed, 'policy': args.policy, 'tau': tau,
                               'agreement_target': args.agreement, 'drop_ties': args.drop_ties, 'pair': args.pair,
                               **stats})
    for split, d in data.items():
        print(f"{split}: {d['n_pairs']} pairs kept (on {d['n_prompts']} distinct prompts) of {d['n_drawn']} drawn; "
              f"{d['tie_rate']:.1%} of drawn pairs tie on the gold reward"
              + (' (dropped)' if args.drop_ties else '') + f"; labels agree with the gold order on "
              + ('n/a' if d['agreement'] is None else f"{d['agreement']:.1%}") + " of the untied; mean gold reward "
              f"{torch.cat([d['r_chosen'], d['r_rejected']]).mean().item():+.4f}")
    print(f"wrote {args.out} (task {task['name']}, tau {tau:.4g}) in {time.time() - t0:.1f}s")


def draw_pairs(policy, split, n, seed, flag, task, enc, device, gen, coin, args, bar):
    """Two samples per prompt (or the first and the human continuation, --pair human) and their gold rewards,
    prompts in a seeded order, each prompt used up to --max_per_prompt times (pass r over the prompts comes
    before pass r+1), until n pairs are kept; with --drop_ties a pair whose gold rewards tie is drawn but not
    kept. The labeller's coin is drawn here too, one per pair, so the labels can wait for tau. bar counts the
    pairs kept."""
    prompts, refs, ref_mask = M.get_prompts(policy.cfg.vocab_size, split, task['prompt_len'], task['completion_len'])
    order = pick(prompts.size(0), 0, seed, f"{flag} ({split} prompts)").repeat(args.max_per_prompt)
    bs = args.batch_size // 2  # pairs per sampling call: both samples of a prompt in one batch
    out = {k: [] for k in ('prompt_idx', 'y_a', 'm_a', 'y_b', 'm_b', 'r_a', 'r_b', 'u')}
    kept = drawn = tied = i = 0
    while kept < n and i < order.numel():
        # keeping every pair, draw exactly the n needed (the last batch no larger): the same draws as one pass
        idx = order[i:i + (bs if args.drop_ties else min(bs, n - kept))]
        i += idx.numel()
        x = prompts[idx].to(device)
        k = idx.numel()
        y, m = M.sample(policy, torch.cat([x, x]), task['completion_len'], enc.eos, temperature=1.0, generator=gen)
        y, m = y.cpu(), m.cpu()
        if args.pair == 'human':  # the same first samples as on-policy pairs; the second is the human's
            y[k:], m[k:] = refs[idx], ref_mask[idx]
        r = gold_rewards(task, enc, prompts[idx].repeat(2, 1), y, m, refs[idx].repeat(2, 1), ref_mask[idx].repeat(2, 1))
        u = torch.rand(k, generator=coin, dtype=torch.double)
        keep = r[:k] != r[k:] if args.drop_ties else torch.ones(k, dtype=torch.bool)
        drawn, tied = drawn + k, tied + int((r[:k] == r[k:]).sum())
        for key, v in (('prompt_idx', idx), ('y_a', y[:k]), ('m_a', m[:k]), ('y_b', y[k:]), ('m_b', m[k:]),
                       ('r_a', r[:k]), ('r_b', r[k:]), ('u', u)):
            out[key].append(v[keep])
        bar.update(min(int(keep.sum()), n - kept))  # the last batch may keep more than the n used
        kept += int(keep.sum())
    if kept < n:
        raise ValueError(f"{flag}: asked for {n} pairs, but {split}'s {prompts.size(0)} prompts x --max_per_prompt "
                         f"{args.max_per_prompt} gave only {kept}" + (' untied' if args.drop_ties else ''))
    d = {k: torch.cat(v)[:n] for k, v in out.items()}
    d['prompts'] = prompts[d['prompt_idx']]
    return {**d, 'n_drawn': drawn, 'tie_rate': tied / drawn}


def label_pairs(d, tau):
    """Bradley-Terry labels with the coins drawn with the pairs: (chosen, rejected) and the split's statistics."""
    a_wins = d['u'] < bt_prob(d['r_a'], d['r_b'], tau)
    w = a_wins[:, None]
    out = {'prompts': d['prompts'].clone(), 'prompt_idx': d['prompt_idx'],  # row of M.get_prompts(vocab, split)
           'chosen': torch.where(w, d['y_a'], d['y_b']), 'chosen_mask': torch.where(w, d['m_a'], d['m_b']),
           'rejected': torch.where(w, d['y_b'], d['y_a']), 'rejected_mask': torch.where(w, d['m_b'], d['m_a']),
           'r_chosen': torch.where(a_wins, d['r_a'], d['r_b']), 'r_rejected': torch.where(a_wins, d['r_b'], d['r_a'])}
    untied = out['r_chosen'] != out['r_rejected']
    n = out['prompts'].size(0)
    return {**out, 'n_pairs': n, 'n_drawn': d['n_drawn'], 'tie_rate': d['tie_rate'],
            'n_prompts': len(set(d['prompt_idx'].tolist())),
            'agreement': (out['r_chosen'] > out['r_rejected'])[untied].float().mean().item() if untied.any() else None}


# -----------------------------------------------------------------------------
# score: the judge. Every policy gets the same test prompts and the same seeded generator.

def score(args):
    task = get_task(args.task)
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    if not args.temperature > 0 or not math.isfinite(args.temperature):
        raise ValueError(f"--temperature must be > 0, got {args.temperature}")
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.best_of and (args.best_of < 2 or args.rm is None):
        raise ValueError("--best_of N needs N >= 2 and --rm CKPT")
    if args.rm and not args.best_of:
        raise ValueError("--rm is only used with --best_of N")
    if os.path.isdir(args.json):
        raise ValueError(f"--json {args.json} is a directory")
    device = M.get_device(args.device)
    P, C, S = task['prompt_len'], task['completion_len'], args.samples

    # ---- checkpoints: everything is checked before any sampling starts
    ckpts, names = {}, {}
    for path in args.policies:
        name = run_name(path)
        if name in ckpts:
            name = os.path.join(run_name(os.path.dirname(os.path.normpath(path))), name)
        if name in ckpts:
            raise ValueError(f"policy {path} is listed twice")
        ckpts[name] = M.load_checkpoint(path, stages=POLICY_STAGES)
        names[name] = path
        check_task(ckpts[name], task, path)
    ref_path = args.ref
    if ref_path is None:
        ref_path = next((names[n] for n, c in ckpts.items() if c['stage'] == 'sft'), None) or \
            next((c['ref'] for c in ckpts.values() if c.get('ref')), None)
        if ref_path is None:
            raise ValueError("no reference policy: pass --ref out/sft")
    ref_ckpt = M.load_checkpoint(ref_path, stages=POLICY_STAGES)
    check_task(ref_ckpt, task, ref_path)
    vocab = ref_ckpt['vocab_size']
    for name, c in ckpts.items():
        if c['vocab_size'] != vocab:
            raise M.CheckpointError(f"{names[name]} has vocab_size {c['vocab_size']}, the reference {ref_path} {vocab}")
    rms = {}  # label -> (path, reward_of); one RM keeps the plain names 'policy+boN', several add '@label'
    for path in args.rm or []:
        rm_ckpt, reward_of = M.load_reward(path, device, vocab)
        check_task(rm_ckpt, task, path, required=True)
        label = run_name(path)
        if label in rms:
            label = os.path.join(run_name(os.path.dirname(os.path.normpath(path))), label)
        if label in rms:
            raise ValueError(f"--rm {path} is listed twice")
        rms[label] = (path, reward_of)
    enc = M.get_tokenizer(vocab)
    prompts, refs, ref_mask = M.get_prompts(vocab, args.split, P, C)
    idx = pick(prompts.size(0), args.n_prompts, args.seed, f'--n_prompts ({args.split} prompts)')
    prompts, refs, ref_mask = prompts[idx], refs[idx], ref_mask[idx]
    n = prompts.size(0)
    xs = prompts.repeat_interleave(S, 0)
    refs_s, ref_mask_s = refs.repeat_interleave(S, 0), ref_mask.repeat_interleave(S, 0)
    bs = args.batch_size
    t0 = time.time()
    # the bar counts samples drawn: the reference's, each other policy's, and the best-of-N ones of every policy
    redrawn = sum(ckpt_file(path) != ckpt_file(ref_path) for path in names.values())
    bar = tqdm(total=n * S * (1 + redrawn) + n * args.best_of * len(ckpts), unit='sample', desc='score',
               disable=args.no_tqdm)

    # ---- the human reference completions and the reference policy's samples: what every policy is compared to
    g_human = gold_rewards(task, enc, prompts, refs, ref_mask, refs, ref_mask)
    ref = load_model(ref_ckpt, ref_path, device, task)
    bar.set_postfix(policy=run_name(ref_path))
    y_ref, m_ref = generate(ref, prompts, S, C, enc.eos, args.temperature, args.seed, device, bs, bar)
    g_ref = gold_rewards(task, enc, xs, y_ref, m_ref, refs_s, ref_mask_s).view(n, S)
    base_words = Counter(words(enc, xs, y_ref, m_ref))

    def examples(y, m, g, k=3):
        return [{'prompt': M.decode(enc, prompts[i]), 'completion': M.decode(enc, y[i * (y.size(0) // n)],
                 m[i * (y.size(0) // n)]), 'gold': g.view(n, -1)[i, 0].item(),
                 'reference': M.decode(enc, refs[i], ref_mask[i])} for i in range(min(k, n))]

    def row(g, path, stage, kl=None, kl_note=None):
        """The metrics of a (n, k) matrix of gold rewards, k completions per prompt; kl (n, k) or a number."""
        w_h = win_rate(g, g_human[:, None]).mean(1)
        w_r = win_rate(g[:, :, None], g_ref[:, None, :]).mean((1, 2))  # each completion vs each SFT sample
        out = {'path': path, 'stage': stage, 'n_completions': g.numel()}
        out['gold_reward'], out['gold_reward_ci'] = mean_ci(g.mean(1))
        if task['name'] == 'overlap':  # the reference is the answer key: it scores 1 and always wins
            out['win_vs_human'] = out['win_vs_human_ci'] = None
        else:
            out['win_vs_human'], out['win_vs_human_ci'] = mean_ci(w_h)
            out['tie_vs_human'] = (g == g_human[:, None]).float().mean().item()  # ties count half in the win rate
        out['win_vs_ref'], out['win_vs_ref_ci'] = mean_ci(w_r)
        if isinstance(kl, torch.Tensor):
            out['kl'], out['kl_ci'] = mean_ci(kl.mean(1))
            out['reward_minus_beta_kl'], out['reward_minus_beta_kl_ci'] = mean_ci((g - args.beta * kl).mean(1))
        elif kl is not None:
            out['kl'], out['kl_ci'] = kl, 0.0
            out['reward_minus_beta_kl'], out['reward_minus_beta_kl_ci'] = mean_ci(g.mean(1) - args.beta * kl)
        else:
            out['kl'] = out['kl_ci'] = out['reward_minus_beta_kl'] = out['reward_minus_beta_kl_ci'] = None
        if kl_note:
            out['kl_note'] = kl_note
        return out

    results = {'human_reference': {**row(g_human[:, None], None, 'human'), **shape_stats(refs, ref_mask, enc.eos),
                                   'examples': examples(refs, ref_mask, g_human)}}
    for name, ckpt in ckpts.items():
        path = names[name]
        bar.set_postfix(policy=name)
        same = ckpt_file(path) == ckpt_file(ref_path)
        model = ref if same else load_model(ckpt, path, device, task)
        if same:  # identical seed and model: identical samples, so reuse them
            y, m = y_ref, m_ref
        else:
            y, m = generate(model, prompts, S, C, enc.eos, args.temperature, args.seed, device, bs, bar)
        g = gold_rewards(task, enc, xs, y, m, refs_s, ref_mask_s).view(n, S)
        kl = (seq_logprobs(model, xs, y, m, args.temperature, device, bs)
              - seq_logprobs(ref, xs, y, m, args.temperature, device, bs)).view(n, S)
        results[name] = {**row(g, path, ckpt['stage'], kl), **shape_stats(y, m, enc.eos), 'step': ckpt.get('step'),
                         'top_words': top_words(enc, xs, y, m, base_words, y_ref.size(0)),
                         'examples': examples(y, m, g)}
        if args.best_of:  # N samples per prompt; best-of-n for n = 1, 2, 4, ..., N takes the first n of them
            N = args.best_of
            yb, mb = generate(model, prompts, N, C, enc.eos, args.temperature, args.seed + 1, device, bs, bar)
            xb = prompts.repeat_interleave(N, 0)
            gb = gold_rewards(task, enc, xb, yb, mb, refs.repeat_interleave(N, 0), ref_mask.repeat_interleave(N, 0))
            gb = gb.view(n, N)
            for label, (rm_path, reward_of) in rms.items():
                s = rewards_in_batches(reward_of, xb, yb, mb, device, bs).view(n, N)
                for k in sorted({2 ** j for j in range(N.bit_length()) if 2 ** j <= N} | {N}):
                    best = best_of_n(s, k)
                    rows = torch.arange(n) * N + best
                    # KL(bo || ref) = KL(bo || pi) + E_bo[log pi/ref]. The first term has no sample estimate; it is
                    # at most log n - (n-1)/n (Beirami et al. 2024). The second is the k1 log-ratio of the picks.
                    bound = math.log(k) - (k - 1) / k
                    kl_bon = bound
                    if not same:
                        pick_args = (prompts, yb[rows], mb[rows], args.temperature, device, bs)
                        kl_bon = (bound + seq_logprobs(model, *pick_args) - seq_logprobs(ref, *pick_args)).view(n, 1)
                    results[f'{name}+bo{k}' + (f'@{label}' if len(rms) > 1 else '')] = {
                        **row(gb.gather(1, best[:, None]), path, f"{ckpt['stage']}+best_of_{k}", kl_bon,
                              "upper bound: log N - (N-1)/N + the k1 log-ratio of the picked samples to the reference"),
                        **shape_stats(yb[rows], mb[rows], enc.eos), 'step': ckpt.get('step'), 'best_of': k,
                        'rm': rm_path, 'rm_score': s.gather(1, best[:, None]).mean().item(),
                        'gold_oracle_best_of_n': gb[:, :k].max(1).values.mean().item(),
                        'top_words': top_words(enc, prompts, yb[rows], mb[rows], base_words, y_ref.size(0)),
                        'examples': examples(yb[rows], mb[rows], gb.gather(1, best[:, None]))}
        del model
    bar.close()
    dt = time.time() - t0

    out = {'task': task, 'seed': args.seed, 'n_prompts': n, 'samples': S, 'temperature': args.temperature,
           'split': args.split, 'beta': args.beta, 'ref': ref_path, 'vocab_size': vocab, 'kl_estimator': KL_ESTIMATOR, 'ci': CI,
           'best_of': args.best_of, 'rm': args.rm, 'seconds': dt, 'policies': results}
    if task['name'] == 'overlap':
        out['note'] = OVERLAP_NOTE
    write_json(args.json, out)
    print(f"task {task['name']}: {n} test prompts x {S} samples, reference policy {ref_path}, seed {args.seed}")
    print(markdown([(None, out)]))
    print(f"+- : {CI}\nKL: {KL_ESTIMATOR}" + (f"\n{OVERLAP_NOTE}" if 'note' in out else ''))
    for name, r in results.items():
        for e in r['examples']:
            print(f"  {name:>16} | {e['prompt']!r} -> {e['completion']!r}  (gold {e['gold']:+.3f})")
    print(f"wrote {args.json} in {dt:.1f}s")


# -----------------------------------------------------------------------------
# prefs: how well does a reward (an RM, or a dpo policy's implicit reward) predict held-out preferences?

def prefs(args):
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    device = M.get_device(args.device)
    ckpt = M.load_checkpoint(args.ckpt, stages=('rm', 'dpo', 'rl'))
    data = M.load_prefs(args.prefs)
    task, vocab = data['task'], data['vocab_size']
    if ckpt['vocab_size'] != vocab:
        raise M.CheckpointError(f"{args.ckpt} has vocab_size {ckpt['vocab_size']}, {args.prefs} {vocab}")
    check_task(ckpt, task, args.ckpt, required=True)
    model = load_model(ckpt, args.ckpt, device, task)
    if ckpt['stage'] == 'rm':
        kind = ckpt.get('rm_type')
        if kind not in ('global', 'local'):
            raise M.CheckpointError(f"{args.ckpt}: rm_type {kind!r} is neither 'global' nor 'local'")
        ref, beta = None, None
    else:  # the implicit reward beta*log(pi/pi_ref) of a policy trained with a preference loss
        kind, beta = 'dpo_implicit', ckpt.get('beta')
        if not ckpt.get('ref') or not beta:
            raise M.CheckpointError(f"{args.ckpt} records no reference policy and beta: not a dpo-style policy")
        ref_ckpt = M.load_checkpoint(ckpt['ref'], stages=['sft'], vocab_size=vocab)
        ref = load_model(ref_ckpt, ckpt['ref'], device, task)
    d = data[args.split]
    N = d['prompts'].size(0)
    if ref is None:  # a reward model's scores
        s_c, s_r = M.over_pairs(M.pair_rewards, model, d, device, args.batch_size, rm_type=kind)
        margins = s_c - s_r
    else:  # a policy's sequence log-probs, against its reference's
        s_c, s_r = M.over_pairs(M.pair_logprobs, model, d, device, args.batch_size)
        ref_c, ref_r = M.over_pairs(M.pair_logprobs, ref, d, device, args.batch_size)
        margins = beta * ((s_c - ref_c) - (s_r - ref_r))
    margins = margins.double()
    gold = (d['r_chosen'] - d['r_rejected']).double()
    untied = gold != 0
    ll = F.logsigmoid(margins)
    out = {'ckpt': args.ckpt, 'prefs': args.prefs, 'split': args.split, 'task': task, 'reward': kind, 'beta': beta,
           'n_pairs': N, 'n_tied': int((~untied).sum()), 'loglik': ll.mean().item(),
           'loglik_untied': ll[untied].mean().item() if untied.any() else None,
           # agreement with the (noisy) labels, and with the gold order itself; score ties count half
           'acc': win_rate(margins[untied], torch.zeros(1)).mean().item() if untied.any() else None,
           'acc_gold': win_rate(margins[untied] * gold[untied].sign(), torch.zeros(1)).mean().item()
           if untied.any() else None}
    fmt = lambda v: 'n/a' if v is None else f'{v:.4f}'
    print(f"{args.ckpt} ({kind}) on {args.prefs} [{args.split}]: {N} pairs, {out['n_tied']} tied (equal gold reward)")
    print(f"preference log-likelihood {fmt(out['loglik'])} (untied pairs {fmt(out['loglik_untied'])}); "
          f"accuracy on untied pairs: vs labels {fmt(out['acc'])}, vs gold order {fmt(out['acc_gold'])}")
    if args.json:
        write_json(args.json, out)
        print(f"wrote {args.json}")


# -----------------------------------------------------------------------------
# table and frontier: compare runs.

def read_score_json(path):
    try:
        with open(path) as f:
            d = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a JSON file ({type(e).__name__})")
    if not isinstance(d, dict) or not isinstance(d.get('policies'), dict) or 'task' not in d:
        raise ValueError(f"{path} was not written by eval.py score")
    return d


def markdown(runs):
    """runs: [(label or None, score dict)]."""
    def f(v, ci=None, fmt='{:+.3f}'):
        return 'n/a' if v is None else fmt.format(v) + ('' if ci is None else f' ± {ci:.3f}')
    lines = [('| file ' if runs[0][0] else '') + '| task | policy | gold reward | win vs human | win vs SFT | KL | '
             'reward - beta*KL | length |',
             ('|---' if runs[0][0] else '') + '|---|---|---|---|---|---|---|---|']
    for lab, d in runs:
        for name, r in d['policies'].items():
            lines.append((f'| {lab} ' if lab else '') + f"| {d['task']['name']} | {name} | "
                         f"{f(r['gold_reward'], r['gold_reward_ci'])} | "
                         f"{f(r['win_vs_human'], r['win_vs_human_ci'], '{:.3f}')} | "
                         f"{f(r['win_vs_ref'], r['win_vs_ref_ci'], '{:.3f}')} | "
                         f"{f(r['kl'], r.get('kl_ci'), '{:.2f}')} | {f(r['reward_minus_beta_kl'])} | "
                         f"{r['length']:.1f} |")
    return '\n'.join(lines)


def table(args):
    runs = [(path if len(args.files) > 1 else None, read_score_json(path)) for path in args.files]
    print(markdown(runs))
    betas = sorted({d.get('beta') for _, d in runs}, key=str)
    print(f"\n+- : 95% normal-approximation intervals over prompts; beta = {', '.join(map(str, betas))}")
    if any(d['task']['name'] == 'overlap' for _, d in runs):
        print(OVERLAP_NOTE)


def method_of(name, r):
    """The curve a scored checkpoint belongs to: 'dpo/step_63' -> 'dpo', 'sft+bo4' -> 'best-of-N'."""
    if r['stage'] == 'human':
        return None
    if 'best_of' in r['stage']:
        return 'best-of-N'
    return name.split('/')[0]


def merged(paths):
    """{name: row} over several score JSONs of one task, seed and split (a checkpoint listed twice is the same),
    every gold reward and KL a number (the human reference has no KL)."""
    runs = [read_score_json(path) for path in paths]
    if len({(json.dumps(d['task'], sort_keys=True), d['split'], d.get('seed')) for d in runs}) > 1:
        raise ValueError(f"{' '.join(paths)}: mixes tasks, splits or seeds (" +
                         ', '.join(f"{d['task']['name']} {d['split']} seed {d.get('seed')}" for d in runs) + ')')
    for path, d in zip(paths, runs):
        for name, r in d['policies'].items():
            numbers = (r.get('gold_reward'),) + (() if r['stage'] == 'human' else (r.get('kl'),))
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
                raise ValueError(f"{path}: {name} has gold reward {r.get('gold_reward')} and KL {r.get('kl')}: "
                                 "not numbers")
    rows = {name: r for d in runs for name, r in d['policies'].items()}
    return rows, runs[0]['task'], runs[0]['split'], runs[0].get('seed')


def frontier(args):
    """Compare methods at matched KL, as the study does: for each budget B, a method's candidates are its
    checkpoints and SFT itself (KL 0, where every curve starts); the one with the best val gold reward among
    those with val KL <= B is chosen, and reported with its test numbers. Val chooses; test is only read."""
    if not args.out.endswith('.png'):
        raise ValueError(f"--out {args.out}: the figure is a PNG, name it *.png")
    if not all(b > 0 for b in args.budgets):  # NaN too
        raise ValueError(f"--budgets {' '.join(map(str, args.budgets))}: KL budgets are nats, > 0")
    val, task, vs, v_seed = merged(args.val)
    test, t_task, ts, t_seed = merged(args.test)
    if (vs, ts) != ('val', 'test'):
        raise ValueError(f"--val files are scored on {vs}, --test files on {ts}")
    if (task, v_seed) != (t_task, t_seed):
        raise ValueError(f"--val files are of task {task_str(task)}, seed {v_seed}; --test files of task "
                         f"{task_str(t_task)}, seed {t_seed}")
    if set(val) != set(test):
        raise ValueError(f"val and test score different checkpoints: {sorted(set(val) ^ set(test))}")
    sft = [n for n, r in test.items() if r['stage'] == 'sft' and r['kl'] == 0]
    if not sft:
        raise ValueError("no SFT row (KL 0) among the scores: score the reference policy too")
    curves = {}
    for name, r in test.items():
        method = method_of(name, r)
        if method is not None and name != sft[0]:
            curves.setdefault(method, []).append(name)
    for names in curves.values():  # along the run: by step, or by N for best-of-N
        names.sort(key=lambda n: (test[n].get('best_of') or 0, test[n].get('step') or 0))

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    s0 = test[sft[0]]
    for k, (method, names) in enumerate(curves.items()):
        pts = [s0] + [test[n] for n in names]
        ax.plot([r['kl'] for r in pts], [r['gold_reward'] for r in pts], '-o' if method != 'best-of-N' else '--x',
                color=f'C{k % 10}', label=method, ms=4)
    ax.plot([0], [s0['gold_reward']], 'ks', label='SFT')
    human = [r['gold_reward'] for r in test.values() if r['stage'] == 'human']
    if human and task['name'] != 'overlap':
        ax.axhline(human[0], color='gray', ls=':', lw=1, label='human continuation')
    for b in args.budgets:
        ax.axvline(b, color='gray', lw=0.5, alpha=0.5)
    ax.set_xlabel('KL(pi || pi_SFT), nats per completion (test; best-of-N: the analytic bound)')
    ax.set_ylabel(f"gold reward ({task['name']}, test prompts)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(args.out, lambda tmp: fig.savefig(tmp, format='png', dpi=130))

    print(f"task {task['name']}: test gold reward of the checkpoint chosen on val within each KL budget "
          f"(its test KL; SFT = {s0['gold_reward']:+.3f} at KL 0)\n")
    print('| method | ' + ' | '.join(f'KL <= {b:g}' for b in args.budgets) + ' |')
    print('|---|' + '---|' * len(args.budgets))
    for method, names in curves.items():
        cells = []
        for b in args.budgets:
            best = max((n for n in [sft[0]] + names if val[n]['kl'] <= b), key=lambda n: val[n]['gold_reward'])
            r = test[best]
            cells.append(f"{r['gold_reward']:+.3f} (KL {r['kl']:.1f}, {best})")
        print(f'| {method} | ' + ' | '.join(cells) + ' |')
    print(f"\nwrote {args.out}")


if __name__ == '__main__':
    M.main_guard(main)
