"""Stop training when a wall-clock budget is spent, and keep what was trained.

The main job promises "at most N minutes of training" on any machine. Iteration counts are
calibrated for the reference machine; this hook is the guarantee on slower ones. When it stops a
run it saves a checkpoint (and the ``last_checkpoint`` pointer) so evaluation and ``--resume``
see the last trained weights.
"""
import os.path as osp
import time
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class TrainTimeBudgetHook(Hook):
    """Stop training after ``budget_minutes`` of wall-clock training time.

    Args:
        budget_minutes: training time allowed (validation inside training counts too).
    """
    priority = 'VERY_LOW'  # after the optimizer step and the regular checkpoint hook

    def __init__(self, budget_minutes: float):
        if budget_minutes <= 0:
            raise ValueError(f'budget_minutes must be > 0, got {budget_minutes}')
        self.budget_s = budget_minutes * 60.0
        self._start: Optional[float] = None

    def before_train(self, runner) -> None:
        self._start = time.monotonic()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        elapsed = time.monotonic() - self._start
        if elapsed < self.budget_s or runner.iter + 1 >= runner.max_iters:
            return
        runner.logger.info(f'TrainTimeBudgetHook: {elapsed / 60:.1f} min budget spent at '
                           f'iteration {runner.iter + 1}/{runner.max_iters}; stopping.')
        runner.train_loop.stop_training = True
        filename = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, filename, save_optimizer=True,
                               save_param_scheduler=True)
        with open(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(runner.work_dir, filename))
