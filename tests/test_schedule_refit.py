"""Re-fitting a running schedule to a new length (TrainTimeBudgetHook(refit=True))."""
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.optim.scheduler import (CosineAnnealingLR, LinearLR, MultiStepLR, OneCycleLR,
                                      PolyLR)
from mmengine.runner import Runner
from toy_training import SlowToyModel, ToyClock, ToyData

import bnn_tasks  # noqa: F401  (registers the hook)
from bnn_tasks.engine import time_budget_hook
from bnn_tasks.engine.mmengine_adapter import UnsupportedScheduleError, refit_schedulers


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def _run(opt, scheds, iters, refit=None):
    """lr used by each iteration; ``refit=(at, old_max, new_max)`` re-fits after ``at`` steps."""
    lrs = []
    for it in range(iters):
        if refit and it == refit[0]:
            refit_schedulers(scheds, *refit)
        lrs.append(opt.param_groups[0]['lr'])
        for s in scheds:
            s.step()
    return lrs


def _warmup_poly(opt, max_iters=100):
    return [LinearLR(opt, start_factor=0.1, by_epoch=False, begin=0, end=10),
            PolyLR(opt, eta_min=0.0, power=1.0, by_epoch=False, begin=10, end=max_iters)]


def test_poly_decay_is_shrunk_to_end_at_the_new_length():
    opt = _optimizer()
    lrs = _run(opt, _warmup_poly(opt), 60, refit=(30, 100, 60))
    unfitted = _optimizer()
    assert lrs[:30] == _run(unfitted, _warmup_poly(unfitted), 30)  # untouched before the re-fit
    assert lrs[30] == pytest.approx(lrs[29], rel=0.05)  # no jump at the re-fit
    assert all(b < a for a, b in zip(lrs[30:], lrs[31:]))  # still decaying...
    assert lrs[-1] < 0.05 * lrs[30]  # ...to the floor at the new end
    assert opt.param_groups[0]['lr'] == pytest.approx(0.0, abs=1e-9)


def test_poly_decay_is_stretched():
    opt = _optimizer()
    lrs = _run(opt, _warmup_poly(opt, max_iters=40), 80, refit=(20, 40, 80))
    assert lrs[39] > 0.3 * lrs[20]  # without the re-fit it would be at the floor here
    assert opt.param_groups[0]['lr'] == pytest.approx(0.0, abs=1e-9)


def test_running_warmup_finishes_as_planned_at_the_base_lr():
    # A linear ramp re-fitted mid-way would end above or below the base lr; it must not move.
    for new_max in (50, 300):
        opt = _optimizer()
        lrs = _run(opt, _warmup_poly(opt), 20, refit=(5, 100, new_max))
        assert max(lrs) == pytest.approx(1.0, rel=1e-6)
        assert lrs[10] == pytest.approx(1.0, rel=1e-6)  # the warm-up still ends at 10


def test_cosine_reaches_its_floor_at_the_new_end():
    opt = _optimizer()
    scheds = [CosineAnnealingLR(opt, T_max=100, eta_min=0.0, by_epoch=False, begin=0, end=100)]
    lrs = _run(opt, scheds, 50, refit=(25, 100, 50))
    assert lrs[25] == pytest.approx(lrs[24], rel=0.05)
    assert lrs[-1] < 0.01 * lrs[25]  # (an unfitted 50-step cosine also ends at ~1e-3, not 0)


def test_multistep_milestones_move_with_the_schedule():
    opt = _optimizer()
    scheds = [MultiStepLR(opt, milestones=[50, 80], gamma=0.1, by_epoch=False, begin=0, end=100)]
    lrs = _run(opt, scheds, 60, refit=(20, 100, 60))
    drops = [i for i in range(1, 60) if lrs[i] < lrs[i - 1] * 0.5]
    assert drops == [35, 50]  # 20 + 30/2, 20 + 60/2


def test_unsupported_scheduler_is_named():
    opt = _optimizer()
    scheds = [OneCycleLR(opt, eta_max=1.0, total_steps=100, by_epoch=False)]
    with pytest.raises(UnsupportedScheduleError, match='OneCycle'):
        refit_schedulers(scheds, 10, 100, 50)


# ---- the hook in a real mmengine run, on a toy clock (exact step times under any load) ----


@pytest.fixture
def clock(monkeypatch):
    toy = ToyClock()
    monkeypatch.setattr(time_budget_hook, 'time', toy)
    return toy


def _runner(work_dir, max_iters, budget_s, clock, step_seconds=0.03, refit_at=(0.3,),
            checkpoint_interval=10**6):
    return Runner(
        model=SlowToyModel(step_seconds, clock=clock), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type='InfiniteSampler'),
                              batch_size=2, num_workers=0,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-3)),
        param_scheduler=[dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False,
                              begin=0, end=max_iters)],
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=checkpoint_interval,
                                            by_epoch=False),
                           logger=dict(type='LoggerHook', interval=10**6)),
        custom_hooks=[dict(type='TrainTimeBudgetHook', budget_minutes=budget_s / 60, refit=True,
                           refit_at=refit_at, min_timed_iters=5)],
        default_scope='mmengine')


@pytest.mark.parametrize('guess', [2000, 12])  # far too many / too few iterations for 2 s
def test_hook_refits_the_run_to_end_with_its_schedule(tmp_path, clock, guess):
    runner = _runner(tmp_path, max_iters=guess, budget_s=2.0, clock=clock)
    runner.train()
    with open(osp.join(tmp_path, 'time_budget.json')) as f:
        record = json.load(f)
    new_max = record['refits'][0]['new_max_iters']
    assert (new_max < guess) if guess == 2000 else (new_max > guess)
    # the run ended by completing its re-fitted schedule (lr at the floor), not by a cut
    assert runner.train_loop.max_iters == new_max
    assert runner.iter == new_max == record['iterations']
    assert runner.optim_wrapper.get_lr()['lr'][0] == pytest.approx(0.0, abs=1e-9)


def test_a_run_slower_after_its_last_refit_is_still_cut_at_the_budget(tmp_path, clock):
    # measured at 0.03 s/iteration, then every step takes twice as long: the re-fitted schedule
    # no longer fits, and the budget is the guarantee (a cut, with its checkpoint)
    def step(i):
        return 0.03 if i < 10 else 0.06

    runner = _runner(tmp_path, max_iters=12, budget_s=2.0, clock=clock, step_seconds=step)
    runner.train()
    with open(osp.join(tmp_path, 'time_budget.json')) as f:
        record = json.load(f)
    new_max = record['refits'][0]['new_max_iters']
    assert 12 < runner.iter < new_max == runner.train_loop.max_iters
    # stopped by the first iteration that spent the budget
    assert sum(map(step, range(runner.iter - 1))) < 2.0 <= sum(map(step, range(runner.iter)))
    assert osp.isfile(osp.join(tmp_path, f'iter_{runner.iter}.pth'))


@pytest.mark.parametrize('interval, before_the_end', [(20, [20]), (10, [10, 20, 30])])
def test_checkpoints_after_a_refit_are_new_learning_curve_points(tmp_path, clock, interval,
                                                                 before_the_end):
    # the run is faster than guessed, so it re-fits at half the planned 40 iterations, right
    # after saving iteration 20, to end at 42: the spacing scaled and rounded (21, or 10) would
    # save 21 (the half-way point again) or 40 (two iterations before the end's checkpoint)
    runner = _runner(tmp_path, max_iters=40, budget_s=42 * 0.03 / 0.98, clock=clock,
                     refit_at=(0.5,), checkpoint_interval=interval)
    runner.train()
    with open(osp.join(tmp_path, 'time_budget.json')) as f:
        refit, = json.load(f)['refits']
    assert (refit['at_iteration'], refit['new_max_iters']) == (20, 42)
    saved = sorted(int(name[5:-4]) for name in os.listdir(tmp_path)
                   if name.startswith('iter_') and name.endswith('.pth'))
    assert saved == before_the_end + [42]
