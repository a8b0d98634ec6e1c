"""model.py: sampling, log-probs, tokenizer, corpus split, checkpoints, and a tiny SFT run."""
import json
import math
import os
import pickle

import pytest
import torch
import torch.nn.functional as F

from conftest import M, tiny_gpt, save_tiny, run


def test_kv_cache_sampling_matches_no_cache_at_temperature_0():
    model = tiny_gpt()
    prompts = torch.randint(0, 511, (5, 8), generator=torch.Generator().manual_seed(1))
    a, ma = M.sample(model, prompts, 20, eos=511, temperature=0.0, use_cache=True)
    b, mb = M.sample(model, prompts, 20, eos=511, temperature=0.0, use_cache=False)
    assert torch.equal(a, b) and torch.equal(ma, mb)


def test_kv_cache_sampling_matches_no_cache_at_temperature_1_with_two_layers():
    """Kills a decode step that attends to a wrong set of cached keys (e.g. drops the first prompt token's): at
    temperature 1, with the same uniforms, every token must match a full forward pass over the sequence so far.
    (The greedy test above cannot: a random one-layer model's greedy output repeats one token.)"""
    model = tiny_gpt(n_layer=2)
    prompts = torch.randint(0, 511, (6, 8), generator=torch.Generator().manual_seed(1))
    u = torch.rand(6, 20, generator=torch.Generator().manual_seed(2))
    a, ma = M.sample(model, prompts, 20, eos=511, temperature=1.0, use_cache=True, u=u)
    b, mb = M.sample(model, prompts, 20, eos=511, temperature=1.0, use_cache=False, u=u)
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert a.unique().numel() > 50  # varied samples: each step's distribution is actually read


def test_sampling_stops_each_row_at_eos_and_masks_the_rest():
    model = tiny_gpt()
    with torch.no_grad():  # make EOS very likely so some rows stop early
        model.lm_head.weight[511] += 0.6 * model.lm_head.weight.std() * torch.randn(32)
    y, m = M.sample(model, torch.randint(0, 511, (64, 8)), 12, eos=511, temperature=1.0,
                    generator=torch.Generator().manual_seed(0))
    for row, mask in zip(y, m):
        n = int(mask.sum())
        assert torch.all(mask[:n] == 1) and torch.all(mask[n:] == 0)
        if n < 12:  # stopped early: the last real token is EOS and everything after is PAD
            assert row[n - 1] == 511 and torch.all(row[n:] == M.PAD)
        assert not torch.any(row[:n - 1] == 511)
    assert (m.sum(1) < 12).any() and (m.sum(1) == 12).any()


def test_completion_logprobs_equal_a_hand_computation():
    model = tiny_gpt().eval()
    x = torch.tensor([[5, 6, 7], [8, 9, 10]])
    y = torch.tensor([[11, 12, 13, 14], [15, 16, 0, 0]])
    m = torch.tensor([[1., 1, 1, 1], [1, 1, 0, 0]])
    got = M.completion_logprobs(model, x, y, m, temperature=0.7)
    want = torch.zeros(2, 4)
    for b in range(2):
        for t in range(int(m[b].sum())):  # the token y_t given the prompt and y_<t, one forward per token
            prefix = torch.cat([x[b], y[b, :t]])[None]
            want[b, t] = F.log_softmax(model(prefix)[0, -1] / 0.7, -1)[y[b, t]]
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.all(got[1, 2:] == 0)  # padding contributes nothing to a sequence log-prob


def test_tokenizer_is_gpt2_and_truncations_round_trip():
    assert M.get_tokenizer(50257).encode_ordinary("hello world") == [31373, 995]
    text = "Don't panic!\n\tThe answer is 42... ÷ naïve café 🙂"
    for v in (257, 300, 4096, 50257):
        enc = M.get_tokenizer(v)
        ids = enc.encode_ordinary(text)
        assert max(ids) < v - 1 and enc.eos == v - 1
        assert enc.decode(ids) == text
    # a smaller vocabulary means more, shorter tokens
    assert len(M.get_tokenizer(300).encode_ordinary(text)) > len(M.get_tokenizer(50257).encode_ordinary(text))
    with pytest.raises(ValueError):
        M.get_tokenizer(100)


def test_split_is_deterministic_and_disjoint():
    docs = M.load_documents()
    assert len(docs) > 10000
    a, b = M.split_documents(docs), M.split_documents(docs)
    assert a == b
    sets = {k: set(v) for k, v in a.items()}
    assert not (sets['train'] & sets['val']) and not (sets['train'] & sets['test']) and not (sets['val'] & sets['test'])
    assert sum(len(v) for v in a.values()) == len(docs)
    assert M.split_documents(docs, seed=1)['test'] != a['test']


def test_prompts_and_reference_completions():
    prompts, refs, mask = M.get_prompts(4096, 'test', prompt_len=8, completion_len=24)
    data = [d for d in M.get_data(4096, 'test') if len(d) > 9]
    assert prompts.shape == (len(data), 8)
    assert prompts[0].tolist() == data[0][:8]
    n = int(mask[0].sum())
    assert refs[0, :n].tolist() == data[0][8:8 + n]


def test_checkpoint_round_trip(tmp_path):
    model = tiny_gpt()
    save_tiny(str(tmp_path), model, step=7)
    ckpt = M.load_checkpoint(str(tmp_path), stages=['sft'], vocab_size=512)
    assert ckpt['step'] == 7
    again = M.model_from_checkpoint(ckpt)
    x = torch.randint(0, 511, (2, 10))
    assert torch.equal(model.eval()(x), again.eval()(x))
    assert not os.path.exists(str(tmp_path / 'ckpt.pt.tmp'))


class Evil:
    def __reduce__(self):
        return (os.system, ('touch pwned_by_pickle',))


def test_crafted_pickle_is_refused(tmp_path):
    path = tmp_path / 'ckpt.pt'
    with open(path, 'wb') as f:
        pickle.dump({'model': Evil(), 'stage': 'sft'}, f)
    with pytest.raises(M.CheckpointError, match='not a valid checkpoint'):
        M.load_checkpoint(str(path))
    assert not os.path.exists('pwned_by_pickle')


def test_wrong_stage_and_vocab_give_clear_errors(tmp_path):
    save_tiny(str(tmp_path), tiny_gpt())
    with pytest.raises(M.CheckpointError, match="is a 'sft' checkpoint, expected rm"):
        M.load_checkpoint(str(tmp_path), stages=['rm'])
    with pytest.raises(M.CheckpointError, match='vocab_size 512, expected 4096'):
        M.load_checkpoint(str(tmp_path), vocab_size=4096)
    r = run('train_rm.py', '--prefs', 'nowhere.pt', '--init', str(tmp_path), '--out_dir', str(tmp_path / 'rm'),
            check=False)
    assert r.returncode != 0 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_sft_loss_falls_on_a_tiny_run(tmp_path):
    out = str(tmp_path / 'sft')
    r = run('train_mle.py', '--loss', 'sft', '--out_dir', out, '--vocab_size', '512', '--n_layer', '1',
            '--n_embd', '32', '--n_head', '2', '--block_size', '32', '--max_iters', '60', '--eval_interval', '20',
            '--lr', '3e-3', '--no_tqdm')
    rows = [json.loads(l) for l in open(os.path.join(out, 'log.jsonl'))]
    assert [r['step'] for r in rows] == [20, 40, 60]
    assert rows[-1]['val_loss'] < rows[0]['val_loss'] < math.log(512)  # below a uniform guess, and falling
    ckpt = M.load_checkpoint(out, stages=['sft'])
    assert ckpt['step'] == 60 and ckpt['config']['lr'] == 3e-3
    assert json.load(open(os.path.join(out, 'config.json')))['max_iters'] == 60
    assert '--- ' in r.stdout  # samples printed at the end
