"""TrainTimeBudgetHook stops a run and leaves a resumable checkpoint."""
import os.path as osp

from mmengine.runner import Runner
from toy_training import SlowToyModel, ToyData

import bnn_tasks  # noqa: F401  (registers the hook)


def _runner(work_dir, budget_minutes, max_iters=40):
    return Runner(
        model=SlowToyModel(step_seconds=0.05), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=2, num_workers=0,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-3)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1000)),
        custom_hooks=[dict(type='TrainTimeBudgetHook', budget_minutes=budget_minutes)],
        default_scope='mmengine')


def test_budget_stops_training_and_saves_checkpoint(tmp_path):
    runner = _runner(tmp_path, budget_minutes=0.3 / 60)  # 0.3 s: a handful of 50 ms iterations
    runner.train()
    assert 1 <= runner.iter < 40
    ckpt = osp.join(tmp_path, f'iter_{runner.iter}.pth')
    assert osp.exists(ckpt)
    with open(osp.join(tmp_path, 'last_checkpoint')) as f:
        assert f.read() == ckpt


def test_generous_budget_does_not_interfere(tmp_path):
    runner = _runner(tmp_path, budget_minutes=10, max_iters=5)
    runner.train()
    assert runner.iter == 5


def test_refit_timer_is_due_at_each_share_of_the_budget_or_of_the_planned_iterations():
    from bnn_tasks.engine.budget import RefitTimer
    # a clock on which the run began at 100 s
    timer = RefitTimer(budget_s=100.0, shares=(0.5, 0.1), min_timed_iters=3, began=100.0)
    assert timer.due_step_time(105.0, 5) is None  # not started
    timer.start(101.0, 1)
    assert timer.due_step_time(120.0, 2) is None  # one timed iteration, 3 needed
    assert timer.due_step_time(109.0, 5) is None  # before 10 % of the budget
    # 10 %: the mean step since the mark, which moves there
    assert timer.due_step_time(111.0, 6) == 2.0 and timer.mark == (111.0, 6)
    # 50 % of a guess of 20 planned iterations comes before 50 % of the budget
    assert timer.due_step_time(115.0, 9, planned=20) is None  # 3 timed iterations needed
    assert timer.due_step_time(117.0, 10, planned=20) == 1.5
    assert timer.pending == [] and timer.due_step_time(190.0, 50) is None
