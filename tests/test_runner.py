"""The sweeps' runner (experiments/frontier.py): an ablation's name, seed, run and flags are checked before any job
runs; commands run without a shell; --dry prints what would run and changes nothing; --set_aside keeps every stale
copy. The command-line tests run a copy of the repo's code in a temporary folder, so they touch no real record."""
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, ENV

sys.path.insert(0, os.path.join(ROOT, 'experiments'))
import data_efficiency_v2 as DE2  # noqa: E402
import frontier as F  # noqa: E402


@pytest.fixture
def repo(tmp_path):
    """The code of the repo (stages, model, eval, experiments) in a folder of its own, without out/ or results/."""
    root = tmp_path / 'repo'
    shutil.copytree(os.path.join(ROOT, 'experiments'), root / 'experiments',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for f in os.listdir(ROOT):
        if f.endswith('.py'):
            shutil.copy(os.path.join(ROOT, f), root / f)
    return root


def frontier(repo, *args, **kw):
    return subprocess.run([sys.executable, 'experiments/frontier.py', *args], cwd=repo, env=ENV, capture_output=True,
                          text=True, **kw)


def files(root):
    """Every file under root with its size and mtime: what a command that writes nothing leaves as it was."""
    return {os.path.join(d, f): (os.stat(os.path.join(d, f)).st_size, os.stat(os.path.join(d, f)).st_mtime_ns)
            for d, _, fs in os.walk(root) for f in fs}


def one_line_error(r, *words):
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0 and len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr
    assert all(w in lines[0] for w in words), lines[0]


# ---- an ablation: refused before any job, with one line

def test_an_ablation_needs_a_new_plain_name_a_frontier_seed_and_a_trained_run():
    """Kills names the frontier's records already use (they would be drawn as the frontier's own), names that are
    paths, a seed the frontier has no SFT for, and --ablate rm (a KeyError once: it has no scoring jobs)."""
    for name in ('dpo', 'rloo', 'best_of_n', 'dpo_b0.1', 'odpo_sft', 'human', 'sft', 'rm'):
        with pytest.raises(SystemExit, match="frontier's records already use"):
            F.ablation('dpo_b0.1', '', name, 'sentiment', 1337)
    for name in ('a/b', '..', 'x..y', '.hidden', '1abc', 'a b', 'a;b'):
        with pytest.raises(SystemExit, match='a letter, then letters'):
            F.ablation('dpo_b0.1', '', name, 'sentiment', 1337)
    with pytest.raises(SystemExit, match=r"--seed 7: not one of the frontier's seeds \(1337, 1, 2\)"):
        F.ablation('dpo_b0.1', '', 'new', 'sentiment', 7)
    for run in ('rm', 'label', 'sft', 'bon'):
        with pytest.raises(SystemExit, match=f'--ablate {run}: not a training run of the frontier; one of dpo_b0.03, '):
            F.ablation(run, '', 'new', 'sentiment', 1337)


def test_an_ablation_name_in_use_needs_resume_with_the_same_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs('results/ablations/mine')
    with open('results/ablations/mine/sentiment_seed1337_mine_val.jsonl', 'w') as f:
        f.write(json.dumps({'method': 'human', 'setting': None}) + '\n' +
                json.dumps({'method': 'mine', 'setting': '--beta 0.3'}) + '\n')
    with pytest.raises(SystemExit, match='an ablation of that name exists'):
        F.check_name('mine', '--beta 0.3', resume=False)
    F.check_name('mine', '--beta 0.3', resume=True)  # continues it
    with pytest.raises(SystemExit, match="made with --flags '--beta 0.3', not '--beta 0.5'"):
        F.check_name('mine', '--beta 0.5', resume=True)
    with pytest.raises(SystemExit, match='no ablation other to continue'):
        F.check_name('other', '', resume=True)
    os.makedirs('out/ablations/begun')  # training started, nothing scored yet: taken too
    with pytest.raises(SystemExit, match='an ablation of that name exists'):
        F.check_name('begun', '', resume=False)
    F.check_name('new', '', resume=False)


@pytest.mark.parametrize('flags, words', [('--no_such_flag 3', ('unrecognized arguments: --no_such_flag 3',)),
                                          ('--beta -1', ('--beta must be > 0',)),
                                          ('--beta 0.3; touch pwned', ("invalid float value: '0.3;'",)),
                                          ('--beta "0.3', ('No closing quotation',))])
def test_bad_flags_are_one_line_before_any_job_runs(repo, flags, words):
    """The stage's own parse_args judges --flags (its flags and every check that needs no file): without --dry, the
    runner stops before it writes anything."""
    before = files(repo)
    r = frontier(repo, '--ablate', 'dpo_b0.1', '--flags', flags, '--name', 'fresh')
    one_line_error(r, f'--flags {flags!r}', *words)
    assert files(repo) == before and not os.path.exists(repo / 'pwned')


def test_the_runner_runs_a_command_without_a_shell(tmp_path):
    """The runner runs an argument list: a ; or a $( ) in a command is an argument, never shell syntax."""
    job = str(tmp_path / 'job')
    cmd = f"python -c 'import sys; print(sys.argv[1:])' 'a b' c;d $(touch {tmp_path}/pwned)"
    assert F.run_job(job, cmd, None, print, str(tmp_path / 'res'))
    assert open(f'{job}/stdout.txt').read().strip() == f"['a b', 'c;d', '$(touch', '{tmp_path}/pwned)']"
    assert not os.path.exists(tmp_path / 'pwned')


# ---- --dry: what would run, as it would run; nothing written

def test_dry_prints_what_run_job_runs_and_changes_nothing(tmp_path, monkeypatch, capsys):
    """Kills a --dry that prints SNAPSHOTS: placeholders as if they ran, leaves out --json, the thread setting or
    --resume/--overwrite, or writes a file (timings, folders)."""
    monkeypatch.setattr(F, 'ROOT', str(tmp_path))
    monkeypatch.chdir(tmp_path)
    jobs = [('out/x/train', [], 'python train_rl.py --algo rloo --beta 0.1', None),
            ('out/x/score', ['out/x/train'], 'python eval.py score --split val SNAPSHOTS:out/x/train',
             ('t', 1, 'x', 'val'))]

    def dry(*flags):
        before = files(tmp_path)
        monkeypatch.setattr(sys, 'argv', ['frontier.py', '--dry', *flags])
        F.main(jobs, 'res')
        assert files(tmp_path) == before
        return capsys.readouterr().out.splitlines()

    train, score, total = dry()
    assert train == ('OMP_NUM_THREADS=1 python train_rl.py --algo rloo --beta 0.1 --out_dir out/x/train --overwrite'
                     '  # out/x/train')
    assert score.endswith('SNAPSHOTS:out/x/train  # out/x/score: SNAPSHOTS: resolved when its dependencies are done')
    assert total == '# 2 jobs to do'
    os.makedirs('out/x/train')
    for f in ('ckpt.pt', 'step_10.pt', 'step_2.pt'):
        open(f'out/x/train/{f}', 'w').close()
    assert dry()[0].endswith('--out_dir out/x/train --resume  # out/x/train')  # a killed run continues
    with open('out/x/train/DONE', 'w') as f:
        f.write('python train_rl.py --algo rloo --beta 0.1 --out_dir out/x/train --overwrite\n12.0 s\n')
    score, total = dry()
    assert score == ('OMP_NUM_THREADS=1 python eval.py score --split val out/x/train/step_2.pt out/x/train/step_10.pt '
                     '--json out/x/score/eval.json  # out/x/score')
    train, _, _ = dry('--all')
    assert train == ('OMP_NUM_THREADS=1 python train_rl.py --algo rloo --beta 0.1 --out_dir out/x/train --overwrite'
                     '  # out/x/train: done')
    # the printed line is the very command run_job runs, thread setting included
    ran = []
    monkeypatch.setattr(F.subprocess, 'run', lambda argv, **kw: ran.append((argv, kw['env'])) or
                        subprocess.CompletedProcess(argv, 1))
    assert not F.run_job('out/x/score', jobs[1][2], jobs[1][3], print, 'res')
    env, line = score.split('  # ')[0].split(' ', 1)
    assert ran[0][0] == shlex.split(line) and ran[0][1]['OMP_NUM_THREADS'] == env.split('=')[1] == '1'


def test_dry_all_into_a_closed_pipe_ends_without_a_traceback(repo):
    """`--dry --all | head`: the reader goes away early."""
    p = subprocess.Popen([sys.executable, 'experiments/frontier.py', '--dry', '--all'], cwd=repo, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()  # before the first line is written
    err = p.stderr.read()
    p.wait()
    assert 'Traceback' not in err and 'BrokenPipeError' not in err, err


def test_dry_of_an_ablation_runs_the_flag_check_and_writes_nothing(repo):
    before = files(repo)
    r = frontier(repo, '--ablate', 'rloo_b0.1', '--flags', '--algo ppo', '--name', 'rloo', '--dry')
    one_line_error(r, "--name rloo: the frontier's records already use that name")
    r = frontier(repo, '--ablate', 'rloo_b0.1', '--flags', '--algo ppo', '--name', 'ppo_b0.1', '--dry')
    assert r.returncode == 0, r.stderr
    train = next(line for line in r.stdout.splitlines()
                 if line.endswith('# out/ablations/ppo_b0.1/seed1337/sentiment/ppo_b0.1'))
    assert train.startswith('OMP_NUM_THREADS=1 python train_rl.py --algo rloo ') and ' --algo ppo --out_dir ' in train
    assert files(repo) == before


# ---- --set_aside: shows what it would move; a second keeps the first's copies

def test_set_aside_dry_moves_nothing_and_a_second_set_aside_keeps_the_first(tmp_path, monkeypatch, capsys):
    """Kills a --dry that moves, and os.replace onto the stale copy an earlier set-aside left."""
    res = tmp_path / 'res'
    (res / 'logs').mkdir(parents=True)

    def block_files(text):
        for f in ('overlap_seed1337_bon_val.jsonl', 'logs/seed1337_overlap_rm_n250.jsonl'):
            (res / f).write_text(text)
        (res / 'timings.tsv').write_text('out/data_efficiency_v2/seed1337/overlap/rm_n250\t100.0\n')
    block_files('first')
    monkeypatch.setattr(F, 'ROOT', str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['data_efficiency_v2.py', '--set_aside', 'overlap', '1337', '--dry'])
    before = files(tmp_path)
    F.main([], str(res), block=DE2.block)
    assert files(tmp_path) == before
    out = capsys.readouterr().out
    assert f'would move {res}/overlap_seed1337_bon_val.jsonl to {res}/stale/overlap_seed1337_bon_val.jsonl' in out
    assert 'would move the timings.tsv line of out/data_efficiency_v2/seed1337/overlap/rm_n250' in out
    assert F.set_aside(str(res), *DE2.block('overlap', '1337')) == 2
    block_files('second')  # the block redone, and set aside again
    assert F.set_aside(str(res), *DE2.block('overlap', '1337')) == 2
    assert (res / 'stale/overlap_seed1337_bon_val.jsonl').read_text() == 'first'
    assert (res / 'stale/overlap_seed1337_bon_val.2.jsonl').read_text() == 'second'
    assert (res / 'stale/logs/seed1337_overlap_rm_n250.2.jsonl').read_text() == 'second'
    assert (res / 'stale/timings.tsv').read_text().count('rm_n250\t100.0') == 2
