"""A run killed at any moment loses only its unfinished iterations; seeds make runs repeatable.

The training runs here are 6 iterations of the float Faster R-CNN on the tiny digits set with
seed 0, a checkpoint every 2 iterations. The reference run is uninterrupted; every other run
is killed (SIGKILL) somewhere, resumed with ``--resume``, and must end with the reference's
weights and losses: the generators, the sampler and the schedule continue where they stood.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import PYTHON, REPO, digits_overrides, options_to_cli, tool_env
from mmengine.config import Config

from bnn_tasks.checkpoint import (CheckpointError, UnsafeCheckpointError, latest_checkpoint,
                                  read_checkpoint, write_atomically)

DET_FP = osp.join(REPO, 'configs', 'baselines', 'faster-rcnn_r18_fpn_digits.py')
TESTS = osp.dirname(osp.abspath(__file__))
ITERS = 6


def _train_cmd(tiny_digits, work_dir, *extra, keep_ckpts=1):
    opts = digits_overrides(Config.fromfile(DET_FP), tiny_digits)
    opts.update({'default_hooks.logger.interval': 1, 'train_cfg.max_iters': ITERS,
                 'train_cfg.val_interval': 100, 'default_hooks.checkpoint.interval': 2,
                 'default_hooks.checkpoint.max_keep_ckpts': keep_ckpts})
    return [PYTHON, osp.join(REPO, 'tools', 'train.py'), DET_FP, '--work-dir', str(work_dir),
            '--seed', '0', *extra, '--cfg-options'] + options_to_cli(opts)


def _env(kill_writing=None, plugin_dir=None):
    """The tools' environment; with ``kill_writing`` the kill plugin loads at start-up (a
    ``sitecustomize`` in ``plugin_dir``: config ``custom_imports`` run before ``--cfg-options``
    are merged, so they cannot add it)."""
    env = tool_env()
    if kill_writing:
        with open(osp.join(plugin_dir, 'sitecustomize.py'), 'w') as f:
            f.write('import kill_during_write  # noqa: F401\n')
        env['PYTHONPATH'] = os.pathsep.join([str(plugin_dir), TESTS, env['PYTHONPATH']])
        env['BNN_TASKS_TEST_KILL_WRITING'] = kill_writing
    return env


def _run(cmd, env, expect_kill=False):
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    if expect_kill:
        assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    else:
        assert run.returncode == 0, run.stderr[-3000:]
    return run


def _losses(work_dir) -> dict:
    """{iteration: loss} from every run's scalars log in ``work_dir``."""
    out = {}
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                for line in f:
                    rec = json.loads(line)
                    if 'loss' in rec:
                        out[rec['iter']] = rec['loss']
    return out


def _final_weights(work_dir):
    return read_checkpoint(osp.join(work_dir, f'iter_{ITERS}.pth'))['state_dict']


def _assert_same_run(work_dir, reference):
    got, ref = _losses(work_dir), _losses(reference)
    assert max(got) == ITERS
    for it in range(3, ITERS + 1):  # every iteration after the first checkpoint
        assert got[it] == pytest.approx(ref[it], rel=1e-4, abs=1e-5), (it, got, ref)
    mine, theirs = _final_weights(work_dir), _final_weights(reference)
    for key, value in theirs.items():
        torch.testing.assert_close(mine[key], value, rtol=1e-4, atol=1e-5, msg=key)


@pytest.fixture(scope='module')
def reference(tiny_digits, tmp_path_factory):
    work = tmp_path_factory.mktemp('reference')
    _run(_train_cmd(tiny_digits, work, keep_ckpts=ITERS), _env())  # keeps every checkpoint
    return str(work)


# ----------------------------------------------------------------------------- file level
def test_atomic_write_killed_midway_keeps_the_old_file(tmp_path):
    target = tmp_path / 'iter_2.pth'
    target.write_bytes(b'old')
    script = ('import os, signal, sys\n'
              'from bnn_tasks.checkpoint import write_atomically\n'
              'os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n'
              'write_atomically(sys.argv[1], b"new" * 100000)\n')
    run = subprocess.run([sys.executable, '-c', script, str(target)], env=tool_env())
    assert run.returncode == -signal.SIGKILL
    assert target.read_bytes() == b'old'  # never the partial new content
    write_atomically(str(target), b'new')
    assert target.read_bytes() == b'new'
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != 'iter_2.pth']
    assert all(name.startswith('.iter_2.pth.') for name in leftovers)  # the killed temp file


def test_pickled_callable_is_refused_by_name(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': {'hook': os.system}}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        read_checkpoint(str(path))
    message = str(err.value)
    assert 'system' in message and 'for safety' in message and 'truncated' not in message


def test_truncated_checkpoint_is_named_as_such(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}, 'meta': {}}, path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match='truncated'):
        read_checkpoint(str(path))


def test_latest_checkpoint_skips_an_unreadable_one(tmp_path):
    older, newer = tmp_path / 'iter_2.pth', tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {}, 'meta': {'iter': 2}}, older)
    time.sleep(0.05)
    newer.write_bytes(b'not a checkpoint')
    (tmp_path / 'last_checkpoint').write_text(str(newer))
    warnings = []
    path, ckpt = latest_checkpoint(str(tmp_path), warn=warnings.append)
    assert path == str(older) and ckpt['meta']['iter'] == 2
    assert any('iter_4.pth' in w and 'cannot be read' in w for w in warnings)


# ----------------------------------------------------------------------------- training
def test_seeded_runs_repeat_and_record_their_seed(tiny_digits, reference, tmp_path):
    _run(_train_cmd(tiny_digits, tmp_path), _env())
    assert _losses(tmp_path) == _losses(reference)  # every iteration, to the logged digit
    result = json.loads((tmp_path / 'train_result.json').read_text())
    assert result['seed'] == 0 and result['iterations'] == ITERS
    assert read_checkpoint(result['checkpoint'])['meta']['seed'] == 0


@pytest.mark.parametrize('kill_writing', ['iter_4.pth:1', 'last_checkpoint:2'])
def test_kill_during_a_checkpoint_write_then_resume(tiny_digits, reference, tmp_path,
                                                   kill_writing):
    cmd = _train_cmd(tiny_digits, tmp_path)
    plugin_dir = tmp_path / 'plugin'
    plugin_dir.mkdir()
    _run(cmd, _env(kill_writing, plugin_dir), expect_kill=True)
    # max_keep_ckpts=1: the kept iter_2.pth must survive the interrupted save of iter_4
    path, _ = latest_checkpoint(str(tmp_path))
    assert path is not None and osp.basename(path) in ('iter_2.pth', 'iter_4.pth')
    run = _run(cmd + ['--resume'], _env())
    assert 'resumed epoch: 0, iter:' in run.stdout + run.stderr
    _assert_same_run(tmp_path, reference)


def test_kill_during_an_iteration_then_resume(tiny_digits, reference, tmp_path):
    cmd = _train_cmd(tiny_digits, tmp_path)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env(), cwd=REPO, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not osp.exists(tmp_path / 'iter_2.pth') and proc.poll() is None \
                and time.time() < deadline:
            time.sleep(0.05)
        assert osp.exists(tmp_path / 'iter_2.pth'), 'no checkpoint before the deadline'
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _run(cmd + ['--resume'], _env())
    _assert_same_run(tmp_path, reference)


def test_resume_skips_a_truncated_checkpoint_and_says_so(tiny_digits, reference, tmp_path):
    keep, newest = tmp_path / 'iter_2.pth', tmp_path / 'iter_4.pth'
    torch.save(read_checkpoint(osp.join(reference, 'iter_2.pth')), keep)
    torch.save(read_checkpoint(osp.join(reference, 'iter_4.pth')), newest)
    newest.write_bytes(newest.read_bytes()[:4096])  # as a non-atomic writer could leave it
    (tmp_path / 'last_checkpoint').write_text(str(newest))
    os.utime(keep, (time.time() - 60, time.time() - 60))
    run = _run(_train_cmd(tiny_digits, tmp_path, '--resume'), _env())
    log = run.stdout + run.stderr
    assert 'skipping' in log and 'iter_4.pth' in log and 'cannot be read' in log
    assert 'resumed epoch: 0, iter: 2' in log
    _assert_same_run(tmp_path, reference)
