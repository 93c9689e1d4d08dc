"""Stop training when a wall-clock budget is spent, and keep what was trained.

The main job promises "at most N minutes of training" on any machine. Iteration counts are
calibrated for the reference machine; this hook is the guarantee on slower ones. When it stops a
run it saves a checkpoint (and the ``last_checkpoint`` pointer) so evaluation and ``--resume``
see the last trained weights.

With ``refit=True`` the hook also fits the schedule to the budget while training: the number
of iterations a run was given is a guess (a probe's step time, or the reference machine's),
so once the real step time is measured (at ``refit_at`` fractions of the budget) the rest of
the warm-up/decay schedule is stretched or shrunk to end when the budget does
(``mmengine_adapter``). A run then neither stops mid-decay (guess too high) nor leaves budget
unused (guess too low). Each re-fit is logged and recorded in ``time_budget.json``.
"""
import json
import os.path as osp
import time
from typing import List, Optional, Sequence

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from ..checkpoint import LAST_CHECKPOINT, write_atomically
from .budget import REFIT_AT, RefitTimer, iterations_for_budget
from .mmengine_adapter import (UnsupportedScheduleError, check_refittable, refit_anchor,
                               refit_schedulers, resize_iteration_loop)


@HOOKS.register_module()
class TrainTimeBudgetHook(Hook):
    """Stop training after ``budget_minutes`` of wall-clock training time.

    Args:
        budget_minutes: training time allowed (validation inside training counts too).
        refit: re-fit the rest of the (iteration-based) schedule to the budget once the step
            time is measured.
        refit_at: fractions of the budget (or of the planned iterations, whichever comes
            first: a guess far too short would end before) at which to re-fit; each uses the
            mean step time since the previous measurement point (the first iteration is never
            timed: it includes start-up work).
        min_timed_iters: a re-fit waits until this many iterations have been timed.
    """
    priority = 'VERY_LOW'  # after the optimizer step and the regular checkpoint hook

    def __init__(self, budget_minutes: float, refit: bool = False,
                 refit_at: Sequence[float] = REFIT_AT, min_timed_iters: int = 10):
        if budget_minutes <= 0:
            raise ValueError(f'budget_minutes must be > 0, got {budget_minutes}')
        if any(not 0 < f < 1 for f in refit_at):
            raise ValueError(f'refit_at fractions must be in (0, 1), got {list(refit_at)}')
        self.budget_s = budget_minutes * 60.0
        self.refit = refit
        self.refit_at = sorted(refit_at)
        self.min_timed_iters = max(1, int(min_timed_iters))
        self._start: Optional[float] = None
        self._timer = RefitTimer(self.budget_s, ())
        self.refits: List[dict] = []

    @staticmethod
    def _clock() -> float:
        """Rank 0's clock in a distributed run: every process then takes the same stop and
        re-fit decisions at the same iteration (they would hang in the next all-reduce if one
        stopped or changed its schedule alone)."""
        now = time.monotonic()
        if dist.get_world_size() > 1:
            shared = torch.tensor([now], dtype=torch.float64)
            dist.broadcast(shared, src=0)
            now = float(shared.item())
        return now

    def before_train(self, runner) -> None:
        self._start = self._clock()
        self._timer = RefitTimer(self.budget_s, self.refit_at if self.refit else (),
                                 self.min_timed_iters, began=self._start)
        if not self._timer.pending:
            return
        if runner.iter > 0:  # resumed: the checkpoint's schedulers already hold the old fit
            runner.logger.warning('TrainTimeBudgetHook: resumed run; the schedule is not '
                                  're-fitted to the budget again.')
            self._timer.pending.clear()
            return
        try:
            if not isinstance(runner.train_loop, IterBasedTrainLoop):
                raise UnsupportedScheduleError(
                    f'{type(runner.train_loop).__name__} is not an IterBasedTrainLoop')
            check_refittable(runner.param_schedulers)
        except UnsupportedScheduleError as e:
            runner.logger.warning(f'TrainTimeBudgetHook: not re-fitting the schedule: {e}. '
                                  'The run still stops when the budget is spent.')
            self._timer.pending.clear()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        now = self._clock()
        elapsed = now - self._start
        done = runner.iter + 1
        if self._timer.mark is None:  # end of the first iteration: timing starts here
            self._timer.start(now, done)
        else:
            step = self._timer.due_step_time(now, done, runner.max_iters)
            if step is not None:
                self._refit(runner, done, step, elapsed)
        if elapsed < self.budget_s or done >= runner.max_iters:
            return
        runner.logger.info(f'TrainTimeBudgetHook: {elapsed / 60:.1f} min budget spent at '
                           f'iteration {done}/{runner.max_iters}; stopping.')
        runner.train_loop.stop_training = True
        filename = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, filename, save_optimizer=True,
                               save_param_scheduler=True)
        if dist.is_main_process():
            write_atomically(osp.join(runner.work_dir, LAST_CHECKPOINT),
                             osp.join(runner.work_dir, filename))

    def after_train(self, runner) -> None:
        if not self.refit:
            return
        minutes = (self._clock() - self._start) / 60  # collective: every rank calls it
        if dist.is_main_process():
            write_atomically(osp.join(runner.work_dir, 'time_budget.json'), json.dumps(
                dict(budget_minutes=self.budget_s / 60, iterations=runner.iter,
                     minutes=round(minutes, 2), refits=self.refits), indent=1))

    def _refit(self, runner, done: int, step_s: float, elapsed: float) -> None:
        old_max = runner.train_loop.max_iters
        # aim 2 % short of the budget so the stop above does not cut the decay's last steps
        new_max = iterations_for_budget(self.budget_s, elapsed, done, step_s, margin=0.98)
        new_max = max(new_max, refit_anchor(runner.param_schedulers, done) + 1)
        self.refits.append(dict(at_iteration=done, seconds_per_iter=round(step_s, 4),
                                old_max_iters=old_max, new_max_iters=new_max))
        if new_max == old_max:
            return
        refit_schedulers(runner.param_schedulers, done, old_max, new_max)
        resize_iteration_loop(runner, old_max, new_max, done)
        runner.logger.info(f'TrainTimeBudgetHook: {step_s:.3f} s/iteration measured at '
                           f'iteration {done}; schedule re-fitted from {old_max} to {new_max} '
                           f'iterations to end within the {self.budget_s / 60:.1f} min budget.')
