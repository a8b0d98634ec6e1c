"""The KL-axis frontier's protocol, pinned before its numbers: one beta grid and one schedule per method, the band
rule and the dense reruns it asks for, the val choice per budget, and the test scoring of the picks only."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments'))
import frontier as F  # noqa: E402
import frontier_v3 as V  # noqa: E402


def row(kl, gold, step=None, method='dpo', path=None, **kw):
    return {'kl': kl, 'gold_reward': gold, 'step': step, 'method': method, 'path': path or f'p{step}', **kw}


# ---- the sweep's jobs

def test_one_beta_grid_and_one_schedule_per_method():
    """Both trained methods run every beta of the grid, and a method's commands differ only in their beta (and the
    block they belong to): one schedule rule per method."""
    jobs = {name: cmd for name, _, cmd, _ in V.jobs()}
    for method, stage in (('dpo', 'train_mle.py'), ('rloo', 'train_rl.py')):
        cmds = [jobs[f'{V.OUT}/seed1337/sentiment/{method}_b{b}'] for b in V.BETAS]
        assert all(stage in c and f'--beta {b} ' in c for c, b in zip(cmds, V.BETAS))
        assert len({c.replace(f'--beta {b} ', '') for c, b in zip(cmds, V.BETAS)}) == 1
        assert all(V.LENGTH[method] in c for c in cmds)  # the length is spelled out, not a stage default
    assert len(V.BETAS) >= 4 and max(V.BETAS) / min(V.BETAS) >= 30  # levels from about 1 nat to about 30
    assert V.BUDGETS[0] == V.AXIS[0] and V.BUDGETS[-1] == V.AXIS[1]


def test_blocks_seeds_machine_and_test_scoring():
    names = [name for name, *_ in V.jobs()]
    blocks = [(t, s) for t in F.TASKS for s in V.SEEDS[t]]
    assert len(V.SEEDS['sentiment']) == 5 and all(len(V.SEEDS[t]) >= 3 for t in F.TASKS)
    # sentiment first, and each block's own jobs start with its machine record, which they all depend on
    firsts = [names.index(f'{V.OUT}/seed{s}/{t}/machine') for t, s in blocks]
    assert firsts == sorted(firsts)
    # every dependency is a job of the sweep (a seed the first frontier lacks gets its SFT, pairs and RM here), so
    # no block waits for a job that never runs
    assert {d for _, deps, _, _ in V.jobs() for d in deps} <= set(names)
    assert {f'{F.OUT}/seed{s}/sft' for s in V.SEEDS['sentiment']} <= set(names)
    for name, deps, cmd, rec in V.jobs():
        if name.startswith(V.OUT) and not name.endswith('/machine') and deps:
            block = name.rsplit('/', 1)[0]
            assert f'{block}/machine' in deps or any(d.startswith(block) for d in deps), name
        if rec and rec[3] == 'test':  # test scores only what the val choice picks (and best-of-N's one scoring)
            assert 'PICKS:' in cmd or rec[2] == 'bon', name
            if 'PICKS:' in cmd:  # after every val score of the method, dense ones included, and its checkpoints
                method, block = rec[4], name.rsplit('/', 1)[0]
                assert {f'{block}/score_{method}_b{b}{d}_val' for b in V.BETAS for d in ('', '_dense')} <= set(deps)
                assert {f'{block}/{method}_b{b}{d}' for b in V.BETAS for d in ('', '_dense')} <= set(deps)


# ---- the val choice at each budget

def test_pick_is_the_val_best_within_the_budget():
    sft = row(0.0, 0.03, method='best_of_n', path='sft')
    cands = [row(1.5, 0.10, 5), row(3.9, 0.30, 10), row(4.1, 0.50, 15), row(9.0, 0.45, 40), sft]
    assert V.pick(cands, 2)['path'] == 'p5'
    assert V.pick(cands, 4)['path'] == 'p10'
    assert V.pick(cands, 6)['path'] == 'p15'  # the budget is inclusive of everything up to it
    assert V.pick(cands, 30)['path'] == 'p15'  # a larger budget never picks worse on val
    assert V.pick([row(2.5, 0.9, 1), sft], 2)['path'] == 'sft'  # nothing trained inside: SFT itself


# ---- the band rule and the dense reruns it asks for

def test_thin_bands_counts_every_band_below_the_highest_kl():
    kls = [0.5, 2.1, 3.9, 4.5, 7.0, 7.5, 9.9]
    assert V.thin_bands(kls) == [4]  # [8, 10) is not below the highest KL reached (9.9): not asked
    assert V.thin_bands(kls + [4.7, 8.2, 8.3, 12.0]) == [10]  # [10, 12) is empty
    assert V.thin_bands([0.5, 1.0]) == []  # never reached 4 nats: nothing to ask
    assert V.thin_bands([float(k) for k in range(2, 60)]) == []  # two in every band
    assert V.thin_bands([k / 2 for k in range(4, 120)]) == []  # capped at 30: bands past it are not read
    assert V.thin_bands([2.0, 2.5, 31.0]) == list(range(4, 30, 2))


def test_crossings_are_unseen_windows_whose_kl_passes_the_band():
    path = V.path_of([row(1.0, 0, 2), row(7.0, 0, 4), row(8.0, 0, 5), row(3.0, 0, 20), row(3.5, 0, 40)])
    assert path[0] == (0, 0.0)
    assert V.crossings(path, 4) == [(2, 4), (5, 20)]  # up through [4, 6), and back down through it later
    assert V.crossings(path, 6) == [(2, 4), (5, 20)]  # (4, 5) is one step apart: nothing unseen between
    assert V.crossings(path, 8) == [(5, 20)]  # 7 -> 8 at steps 4, 5 is seen; 8 -> 3 passes [8, 10) from its edge
    assert V.crossings(path, 10) == []


def test_dense_plan_reruns_the_first_run_in_the_grid_that_crosses_a_thin_band():
    runs = {'rloo_b1.0': [row(0.8, 0, 2), row(1.2, 0, 4), row(1.1, 0, 200)],
            'rloo_b0.5': [row(2.5, 0, 2), row(2.9, 0, 4), row(2.7, 0, 200)],
            'rloo_b0.2': [row(3.0, 0, 2), row(9.0, 0, 4), row(8.5, 0, 6), row(8.8, 0, 200)]}
    # KLs: 2.5 2.7 2.9 3.0 in [2, 4); [4, 6) and [6, 8) empty; 8.5 8.8 9.0 in [8, 10)
    assert V.thin_bands([r['kl'] for rows in runs.values() for r in rows]) == [4, 6]
    assert V.dense_plan(runs) == {'rloo_b0.2': [(2, 4)]}
    runs['rloo_b0.5'] = [row(2.5, 0, 2), row(6.0, 0, 10), row(2.7, 0, 200)]  # b0.5 now crosses both, up and down
    assert V.dense_plan(runs) == {'rloo_b0.5': [(2, 10), (10, 200)]}


def test_a_long_window_is_scored_at_a_few_evenly_spaced_steps():
    assert V.window_steps(4, 8) == [5, 6, 7]
    steps = V.window_steps(10, 200)
    assert len(steps) == V.DENSE_MOST and steps[0] == 11 and steps[-1] == 199 and steps == sorted(set(steps))


# ---- the placeholders, on records written as the runner writes them

def write(res, task, seed, run, split, rows):
    os.makedirs(res, exist_ok=True)
    with open(F.record_path(res, task, seed, run, split), 'w') as f:
        f.writelines(json.dumps({'task': task, 'seed': seed, 'run': run, 'split': split, **r}) + '\n' for r in rows)


def test_resolve_fills_dense_windows_and_picks(tmp_path, monkeypatch):
    res, task, seed = str(tmp_path / 'res'), 'sentiment', 7
    monkeypatch.setattr(V, 'OUT', str(tmp_path / 'out'))
    monkeypatch.setattr(V, 'RES', res)
    write(res, task, seed, 'bon', 'val', [row(0.0, 0.03, method='best_of_n', path='sft', best_of=1),
                                          row(0.2, 0.07, method='best_of_n', path='sft', best_of=2)])
    kl = {1.0: (0.9, 1.1), 0.5: (2.2, 2.4), 0.2: (2.9, 9.5), 0.1: (8.5, 9.0), 0.05: (12.0, 12.5), 0.02: (13.0, 13.2)}
    for b, (k1, k2) in kl.items():  # rloo_b0.2 jumps from 2.9 at step 4 to 9.5 at step 8
        write(res, task, seed, f'rloo_b{b}', 'val', [row(None, 0.0, method='human', step=None, path=None)] +
              [row(k1, k1 / 20, 4, 'rloo', f'r{b}/4'), row(k2, k2 / 20, 8, 'rloo', f'r{b}/8')])
    # [4, 6), [6, 8) and [10, 12) are empty: rloo_b0.2 crosses the first two between steps 4 and 8, and the first
    # run to cross the third is rloo_b0.05, on its way up to its first snapshot
    plan = V.dense_plan(V.method_runs(task, seed, 'rloo', res))
    assert plan == {'rloo_b0.2': [(4, 8)], 'rloo_b0.05': [(0, 4)]}
    train = V.train_cmd('rloo', 't', seed, 'sft', 0.2)
    dense = V.resolve(f'DENSE:{task}:{seed}:rloo_b0.2:{train}', res)
    # the same run (its length and so its learning-rate schedule kept), only its snapshots every step up to 8
    assert dense.split() == [w for w in train.replace('--eval_interval 20', '--eval_interval 1000')
                             .replace('--early_snapshots 2 40', '--early_snapshots 1 8').split()]
    assert '--max_iters 200' in dense and '--max_iters 200' in train
    assert V.resolve(f'DENSE:{task}:{seed}:rloo_b1.0:{V.train_cmd("rloo", "t", seed, "sft", 1.0)}', res) == 'true'
    d = f'{V.OUT}/seed{seed}/{task}/rloo_b0.2_dense'
    os.makedirs(d)
    for s in range(1, 9):
        open(f'{d}/step_{s}.pt', 'w').close()
    assert V.resolve(f'score WINDOWS:{task}:{seed}:rloo_b0.2', res) == f'score {d}/step_5.pt {d}/step_6.pt {d}/step_7.pt'
    assert V.resolve(f'score WINDOWS:{task}:{seed}:rloo_b1.0', res) == 'true'
    # picks: the val-best within each budget, each checkpoint once, SFT always first
    picks = V.resolve(f'score PICKS:{task}:{seed}:rloo', res).split()
    assert picks[:2] == ['score', 'sft']
    assert picks[2:] == ['r0.02/8', 'r0.05/4', 'r0.2/4', 'r0.2/8', 'r1.0/8']  # gold grows with KL here: the top KL within


def test_runner_records_nothing_for_a_placeholder_that_resolves_to_nothing(tmp_path):
    logs = []
    name = str(tmp_path / 'job')
    assert F.run_job(name, 'score WINDOWS:x', ('sentiment', 7, 'rloo_b1.0_dense', 'val', 'rloo', 'b1.0'), logs.append,
                     str(tmp_path / 'res'), resolve=lambda cmd: 'true')
    assert os.path.exists(f'{name}/DONE') and not os.path.exists(tmp_path / 'res')


def test_machine_record_names_cpu_torch_and_threads(tmp_path):
    from conftest import run
    path = str(tmp_path / 'm.json')
    run('experiments/machine.py', '--json', path)
    m = json.load(open(path))
    assert m['torch'] and m['cpu'] and m['threads'] == 1  # the runner's jobs run one thread each (OMP_NUM_THREADS)


def test_a_fresh_clone_retrains_a_cut_short_blocks_runs_before_scoring_its_picks(tmp_path, monkeypatch):
    """No out/ (checkpoints are not committed): with every val record of a block but no test pick, the runner redoes
    the runs whose snapshots the picks need, not their val scoring."""
    monkeypatch.chdir(tmp_path)
    res = str(tmp_path / 'res')
    jobs = [j for j in V.jobs() if '/seed1337/sentiment/' in j[0] or j[0].endswith('seed1337/sft')]
    for name, deps, cmd, rec in jobs:
        if rec and rec[3] == 'val':
            write(res, *rec[:4], [row(1.0, 0.1, 1)])
    write(res, 'sentiment', 1337, 'bon', 'test', [])
    needed = {name.rsplit('/', 1)[1] for name, *_ in F.still_needed(jobs, res)}
    assert {'score_dpo_picks_test', 'score_rloo_picks_test'} <= needed
    assert {f'{m}_b{b}' for m in ('dpo', 'rloo') for b in V.BETAS} <= needed
    assert not any(n.endswith('_val') for n in needed)


def test_a_fresh_clone_of_a_complete_block_has_nothing_to_do(tmp_path, monkeypatch):
    """The dense, fill and bridge scorings the band rule left empty wrote no records, only their timings lines: a
    fresh clone must read those as done, not retrain the block's pairs and RM to learn that again (on another CPU
    the rebuilt label statistics would disagree with the committed ones and stop the sweep)."""
    monkeypatch.chdir(tmp_path)
    res = str(tmp_path / 'res')
    jobs = [j for j in V.jobs() if '/seed1337/sentiment/' in j[0] or j[0].endswith('seed1337/sft')]
    empty = [name for name, _, cmd, rec in jobs if rec and any(k in cmd for k in ('WINDOWS:', 'FILL:', 'bridge'))]
    for name, deps, cmd, rec in jobs:
        if rec and name not in empty:
            write(res, *rec[:4], [row(1.0, 0.1, 1)])
    with open(f'{res}/timings.tsv', 'w') as f:
        f.writelines(f'{name}\t0.0\n' for name, *_ in jobs)
    assert len(empty) == 2 * (2 * len(V.BETAS) + 1) and F.still_needed(jobs, res) == []
    with open(f'{res}/timings.tsv', 'w') as f:  # a scoring job without its line is still to do, with what it needs
        f.writelines(f'{name}\t0.0\n' for name, *_ in jobs if not name.endswith('/score_rloo_bridge_val'))
    assert [n.rsplit('/', 1)[1] for n, *_ in F.still_needed(jobs, res)][-2:] == ['rloo_bridge', 'score_rloo_bridge_val']


# ---- an ablation: a grid method with new flags, a method of its own over the same protocol

def scored_blocks(res, seeds):
    for s in seeds:
        write(res, 'sentiment', s, 'bon', 'val', [row(0.0, 0.03, method='best_of_n', path=f'sft{s}', best_of=1)])


def test_an_ablation_runs_a_grid_methods_commands_with_its_flags_on_the_blocks_machine(tmp_path, monkeypatch):
    """Kills an ablation that changes more than its flags, skips a beta or a seed, records under the grid method's
    name, or runs without its block's machine record (compared, not rewritten: run_job compares every --json)."""
    monkeypatch.setattr(V, 'RES', str(tmp_path / 'res'))
    scored_blocks(V.RES, V.SEEDS['sentiment'])
    jobs = V.ablation('rloo', '--algo ppo', 'ppo', 'sentiment')
    mine = {name: (deps, cmd, rec) for name, deps, cmd, rec in jobs}
    assert {d for _, deps, _, _ in jobs for d in deps} <= set(mine)  # seeds 3 and 4 too: their SFT, pairs and RM
    grid = {name: (deps, cmd) for name, deps, cmd, _ in V.jobs()}
    for s in V.SEEDS['sentiment']:
        o, g = f'out/ablations_v3/ppo/seed{s}/sentiment', f'{V.OUT}/seed{s}/sentiment'
        assert mine[f'{g}/machine'][1] == grid[f'{g}/machine'][1]  # the block's own record, rerun and compared
        for b in V.BETAS:
            deps, cmd, _ = mine[f'{o}/ppo_b{b}']
            assert cmd == grid[f'{g}/rloo_b{b}'][1] + ' --algo ppo' and deps == grid[f'{g}/rloo_b{b}'][0]
            assert mine[f'{o}/score_ppo_b{b}_val'][2] == ('sentiment', s, f'ppo_b{b}', 'val', 'ppo', '--algo ppo')
        assert mine[f'{o}/score_ppo_picks_test'][2] == ('sentiment', s, 'ppo_picks', 'test', 'ppo', '--algo ppo')
    assert not any('score_bon' in name or '_rloo_' in name or name.endswith('/rloo_b0.1') for name in mine)
    label = next(cmd for name, (_, cmd, _) in mine.items() if name.endswith('seed1337/sentiment/label'))
    assert '--json results/ablations_v3/ppo/labels_sentiment_seed1337.json' in label  # a rebuild reports here


def test_an_ablation_is_refused_in_one_line_before_any_job(tmp_path, monkeypatch):
    monkeypatch.setattr(V, 'RES', str(tmp_path / 'res'))
    scored_blocks(V.RES, (1337, 1))
    for name in ('dpo', 'rloo', 'best_of_n', 'bon', 'rloo_b0.1', 'dpo_b0.02_dense', 'rloo_picks', 'machine', 'human'):
        with pytest.raises(SystemExit, match="frontier_v3's records already use that name"):
            V.ablation('rloo', '', name, 'sentiment', 1337)
    with pytest.raises(SystemExit, match='--ablate rloo_b0.1: a method of the grid, one of dpo, rloo'):
        V.ablation('rloo_b0.1', '', 'new', 'sentiment', 1337)
    with pytest.raises(SystemExit, match=r"--seed 5: not one of frontier_v3's sentiment seeds \(1337, 1, 2, 3, 4\)"):
        V.ablation('rloo', '', 'new', 'sentiment', 5)
    with pytest.raises(SystemExit, match='has not scored best-of-N on sentiment seed 2 yet'):
        V.ablation('rloo', '', 'new', 'sentiment')  # seeds 1337 and 1 are scored, 2 is not
    with pytest.raises(SystemExit, match="--flags '--algo ppo --clip -1': --clip -1.0 and --vf_clip 0.2 must be > 0"):
        V.ablation('rloo', '--algo ppo --clip -1', 'new', 'sentiment', 1337)


def test_an_ablations_placeholders_read_its_own_records_and_the_blocks_sft(tmp_path, monkeypatch):
    """DENSE and WINDOWS read the ablation's runs and checkpoints; PICKS its candidates and the block's SFT."""
    res, out, task, seed = str(tmp_path / 'abl'), str(tmp_path / 'out'), 'sentiment', 7
    monkeypatch.setattr(V, 'RES', str(tmp_path / 'res'))
    write(V.RES, task, seed, 'bon', 'val', [row(0.0, 0.03, method='best_of_n', path='sft', best_of=1)])
    for b in V.BETAS:  # ppo_b0.2 jumps from 2.9 to 9.5 between steps 4 and 8; the others leave no band thin
        k1, k2 = {0.2: (2.9, 9.5)}.get(b, (2 * b + 2.5, 2 * b + 2.6))
        write(res, task, seed, f'ppo_b{b}', 'val', [row(k1, k1 / 20, 4, 'ppo', f'p{b}/4'), row(k2, k2 / 20, 8, 'ppo', f'p{b}/8')])
    for k in (4.5, 5.5, 6.5, 7.5):  # fill [4, 6) and [6, 8) from rloo_b0.1: the grid's records are not the ablation's
        write(V.RES, task, seed, 'ppo_b0.1', 'val', [row(k, 0.0, 3, 'ppo', 'x')])
    train = V.train_cmd('rloo', 't', seed, 'sft', 0.2) + ' --algo ppo'
    dense = V.resolve(f'DENSE:{task}:{seed}:ppo_b0.2:{train}', res, out)
    assert dense.endswith('--early_snapshots 1 8 --seed 7 --no_tqdm --algo ppo')
    d = f'{out}/seed{seed}/{task}/ppo_b0.2_dense'
    os.makedirs(d)
    for s in range(1, 9):
        open(f'{d}/step_{s}.pt', 'w').close()
    assert V.resolve(f'score WINDOWS:{task}:{seed}:ppo_b0.2', res, out) == f'score {d}/step_5.pt {d}/step_6.pt {d}/step_7.pt'
    picks = V.resolve(f'score PICKS:{task}:{seed}:ppo', res, out).split()
    assert picks[:2] == ['score', 'sft'] and 'p0.2/8' in picks and 'x' not in picks


def test_a_rerun_that_disagrees_with_any_committed_json_fails_and_keeps_it(tmp_path):
    """A machine record lives in frontier_v3's folder, not an ablation's: run_job compares it all the same."""
    from conftest import ROOT
    path = tmp_path / 'frontier_v3' / 'machine.json'
    path.parent.mkdir()
    path.write_text('{"cpu": "another machine"}')
    logs = []
    cmd = f'{sys.executable} {ROOT}/experiments/machine.py --json {path}'
    assert not F.run_job(str(tmp_path / 'job'), cmd, None, logs.append, str(tmp_path / 'ablation'))
    assert path.read_text() == '{"cpu": "another machine"}' and 'disagrees with' in logs[-1]


def test_fill_scores_the_kept_steps_where_a_band_stays_thin_after_the_dense_pass(tmp_path, monkeypatch):
    """DPO at a small beta moves up to about a nat a step: the dense pass's evenly spaced steps can leave a band with
    one snapshot. The fill pass scores the steps between two scored ones that cross it, in the first run whose
    dense rerun kept them (up to its last window's end), and the picks are chosen with them (kills a fill that
    looks past the dense rerun, ignores the dense rows, or is left out of the picks)."""
    res, out, task, seed = str(tmp_path / 'res'), str(tmp_path / 'out'), 'sentiment', 7
    monkeypatch.setattr(V, 'RES', res)
    write(res, task, seed, 'bon', 'val', [row(0.0, 0.03, method='best_of_n', path='sft', best_of=1)])
    steady = [(band + k, step) for step, (band, k) in enumerate(((b, k) for b in range(2, 24, 2) for k in (0.5, 1.5)), 1)]
    for b in V.BETAS:  # every band up to 24 has two snapshots (a step apart); dpo_b0.02 goes from 23 to 27 nats
        pts = {1.0: steady, 0.02: [(23.0, 25), (27.0, 50)]}.get(b, [])
        write(res, task, seed, f'dpo_b{b}', 'val', [row(k, k / 100, s, 'dpo', f'{b}/{s}') for k, s in pts])
    write(res, task, seed, 'dpo_b0.02_dense', 'val', [row(23.5, 0.3, 30, 'dpo', 'd30'), row(24.5, 0.3, 33, 'dpo', 'd33'),
                                                        row(26.5, 0.3, 36, 'dpo', 'd36'), row(26.8, 0.3, 40, 'dpo', 'd40')])
    runs = V.method_runs(task, seed, 'dpo', res)
    assert V.dense_plan(runs) == {'dpo_b0.02': [(25, 50)]}  # [24, 26) holds none: one window
    dense = {'dpo_b0.02': V.DE.read(task, seed, 'dpo_b0.02_dense', 'val', res)}
    # after the dense pass [24, 26) still holds one (24.5): the steps between 30 and 33, 33 and 36 cross it
    assert V.fill_plan(runs, dense) == {'dpo_b0.02': [31, 32, 34, 35]}
    assert V.fill_plan(runs, {}) == {'dpo_b0.02': list(range(26, 50))}  # no dense rows yet: the whole window
    assert V.resolve(f'score FILL:{task}:{seed}:dpo_b0.02', res, out) == \
        'score ' + ' '.join(f'{out}/seed7/sentiment/dpo_b0.02_dense/step_{s}.pt' for s in (31, 32, 34, 35))
    assert V.resolve(f'score FILL:{task}:{seed}:dpo_b1.0', res, out) == 'true'
    write(res, task, seed, 'dpo_b0.02_fill', 'val', [row(25.0, 0.9, 31, 'dpo', 'f31')])
    assert 'f31' in V.resolve(f'score PICKS:{task}:{seed}:dpo', res, out).split()  # a fill snapshot is a candidate
    jobs = {name: deps for name, deps, _, _ in V.jobs()}
    o = f'{V.OUT}/seed1337/sentiment'
    assert {f'{o}/score_dpo_b{b}_fill_val' for b in V.BETAS} <= set(jobs[f'{o}/score_dpo_picks_test'])
    # after the dense scores only: a fresh clone of a complete block retrains no dense rerun to find nothing to fill
    assert set(jobs[f'{o}/score_dpo_b0.02_fill_val']) == {f'{o}/score_dpo_b{b}_dense_val' for b in V.BETAS}


def test_bridge_trains_between_the_two_betas_whose_levels_a_thin_band_lies_between(tmp_path, monkeypatch):
    """The band rule's third look: a band still thin after the fill pass (a one-step jump, or a gap between two
    betas' levels) gets one more run at the geometric mean of the neighbouring betas whose runs end either side of
    it, and its snapshots are candidates (kills a bridge at the wrong pair, one that ignores the fill rows, a
    resolve that keeps the placeholder beta, and a bridge left out of the picks or their dependencies)."""
    res, task, seed = str(tmp_path / 'res'), 'sentiment', 7
    monkeypatch.setattr(V, 'RES', res)
    write(res, task, seed, 'bon', 'val', [row(0.0, 0.03, method='best_of_n', path='sft', best_of=1)])
    # each beta's run rises through two snapshots to its level; the levels leave [14, 16) and [16, 18) empty
    ends = {1.0: 2.5, 0.5: 5.0, 0.2: 8.5, 0.1: 11.0, 0.05: 13.0, 0.02: 19.0}
    for b, end in ends.items():
        pts = [(end - 1.5, 10), (end - 1.0, 20), (end - 0.5, 100), (end, 200)]
        write(res, task, seed, f'rloo_b{b}', 'val', [row(None, 0.0, method='human', path=None)] +
              [row(k, k / 20, s, 'rloo', f'{b}/{s}') for k, s in pts])
    runs = V.scored_runs(task, seed, 'rloo', res)
    assert V.thin_bands([r['kl'] for rs in runs.values() for r in rs if r['method'] != 'human']) == [14, 16]
    assert V.bridge_beta(runs) == 0.032  # 0.05 ends at 13 (below 16), 0.02 at 19 (at or above 14): sqrt(0.001)
    train = V.train_cmd('rloo', 't', seed, 'sft', V.BRIDGE)
    assert V.resolve(f'BRIDGE:{task}:{seed}:rloo:{train}', res) == V.train_cmd('rloo', 't', seed, 'sft', 0.032)
    # fill rows count: with [14, 16) and [16, 18) held by them nothing is thin, and there is nothing to bridge
    write(res, task, seed, 'rloo_b0.02_fill', 'val', [row(k, 0.0, s, 'rloo', f'f{s}') for k, s in
                                                       ((14.5, 11), (15.5, 12), (16.5, 13), (17.5, 14))])
    assert V.bridge_beta(V.scored_runs(task, seed, 'rloo', res)) is None
    assert V.resolve(f'BRIDGE:{task}:{seed}:rloo:{train}', res) == 'true'
    write(res, task, seed, 'rloo_bridge', 'val', [row(15.0, 0.99, 200, 'rloo', 'bridge200')])
    assert V.resolve(f'score PICKS:{task}:{seed}:rloo', res).split()[-1] == 'bridge200'  # a bridge snapshot is a candidate
    jobs = {name: (deps, cmd, rec) for name, deps, cmd, rec in V.jobs()}
    o = f'{V.OUT}/seed1337/sentiment'
    deps, cmd, _ = jobs[f'{o}/dpo_bridge']
    assert cmd.startswith('BRIDGE:sentiment:1337:dpo:') and f'--beta {V.BRIDGE} ' in cmd
    assert {f'{o}/score_dpo_b{b}_fill_val' for b in V.BETAS} <= set(deps)
    assert jobs[f'{o}/score_dpo_bridge_val'][2] == ('sentiment', 1337, 'dpo_bridge', 'val', 'dpo', 'bridge')
    assert {f'{o}/dpo_bridge', f'{o}/score_dpo_bridge_val'} <= set(jobs[f'{o}/score_dpo_picks_test'][0])
