import os
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import model as M  # noqa: E402

TINY = dict(vocab_size=512, block_size=40, n_layer=1, n_head=2, n_embd=32)


def tiny_gpt(seed=0, **kw):
    torch.manual_seed(seed)
    return M.GPT(M.GPTConfig(**{**TINY, **kw}))


def save_tiny(path, model, stage='sft', **extra):
    ckpt = dict(model=model.state_dict(), model_args=asdict(model.cfg), config={}, stage=stage,
                vocab_size=model.cfg.vocab_size, task=None, step=0)
    ckpt.update(extra)
    M.save_checkpoint(os.path.join(path, 'ckpt.pt'), **ckpt)
    return path


# One thread per stage process: stable on a shared 2-core machine, and the same float reduction order in
# every run, which the bitwise resume tests need.
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}


def run(*args, check=True):
    """Run a stage script as a user would; returns the CompletedProcess."""
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed:\n{r.stdout}\n{r.stderr}")
    return r


def planted_prefs(path, n=64, n_val=32, P=8, C=6, vocab=512, task=None, seed=0):
    """A preference file whose chosen completions use byte tokens (< 256) and rejected ones merges (>= 256):
    a pattern any model class here can learn."""
    g = torch.Generator().manual_seed(seed)

    def split(n):
        return {'prompts': torch.randint(0, vocab - 1, (n, P), generator=g),
                'chosen': torch.randint(0, 256, (n, C), generator=g),
                'chosen_mask': torch.ones(n, C),
                'rejected': torch.randint(256, vocab - 1, (n, C), generator=g),
                'rejected_mask': torch.ones(n, C),
                'r_chosen': torch.ones(n), 'r_rejected': torch.zeros(n)}
    task = task or {'name': 'sentiment', 'prompt_len': P, 'completion_len': C}
    torch.save({'kind': 'prefs', 'task': task, 'vocab_size': vocab, 'policy': 'planted', 'tau': 0.0, 'seed': seed,
                'train': split(n), 'val': split(n_val)}, path)
    return path


@pytest.fixture
def tiny_sft(tmp_path):
    return save_tiny(str(tmp_path / 'sft'), tiny_gpt())


TASK = {'name': 'sentiment', 'prompt_len': 8, 'completion_len': 6}


@pytest.fixture
def world(tmp_path):
    """A tiny sft policy, a planted preference file and a finished global RM for it."""
    d = {'sft': save_tiny(str(tmp_path / 'sft'), tiny_gpt()),
         'prefs': planted_prefs(str(tmp_path / 'prefs.pt'), task=TASK),
         'tmp': tmp_path}
    d['rm'] = save_tiny(str(tmp_path / 'rm'), tiny_gpt(scalar_head=True), stage='rm', rm_type='global', task=TASK,
                        reward_mean=0.0)
    return d


STAGES = {  # name: args of a short run of each stage. Odd batch sizes split unevenly over 2 ranks, and the
    # preference stages' last batch of an epoch (64 pairs) holds 1 pair, leaving a rank with none.
    'sft': ['train_mle.py', '--loss', 'sft', '--vocab_size', '512', '--n_layer', '1', '--n_head', '2',
            '--n_embd', '32', '--block_size', '32', '--max_iters', '16', '--batch_size', '7'],
    'dpo': ['train_mle.py', '--loss', 'dpo', '--prefs', '{prefs}', '--ref', '{sft}', '--epochs', '2',
            '--batch_size', '9', '--lr', '1e-3'],
    'rm': ['train_rm.py', '--prefs', '{prefs}', '--init', '{sft}', '--epochs', '2', '--batch_size', '7'],
    'rloo': ['train_rl.py', '--algo', 'rloo', '--reward', '{rm}', '--init', '{sft}', '--max_iters', '16',
             '--batch_size', '3'],
    'online_dpo': ['train_rl.py', '--algo', 'online_dpo', '--reward', '{rm}', '--init', '{sft}', '--n_prompts', '32',
                   '--k', '3', '--rounds', '4', '--batch_size', '7'],
    # 3 prompts x 2 samples in 2 minibatches of 3 rows, split 2 + 1 over 2 ranks; the moving reference resumes too
    'ppo': ['train_rl.py', '--algo', 'ppo', '--reward', '{rm}', '--init', '{sft}', '--max_iters', '16',
            '--batch_size', '3', '--k', '2', '--minibatches', '2', '--ref_ema', '0.1'],
}
