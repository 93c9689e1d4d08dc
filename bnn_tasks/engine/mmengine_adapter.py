"""Every change bnn_tasks makes to a running mmengine training loop, in one place.

Written against mmengine 0.10.7 (``MMENGINE_VERSION``): the attributes touched here are not
public API, so a new mmengine version is checked here and nowhere else.

- :func:`refit_schedulers`: stretch or shrink the rest of a running iteration schedule to a new
  ``max_iters``. ``fit_schedule`` fits a config before training from a guessed iteration
  count; once the real step time is known the guess is corrected mid-run: every scheduler point
  after the current iteration (or after a warm-up still running) is mapped linearly from
  ``[now, old_max]`` onto ``[now, new_max]``. mmengine's schedulers compute their values in
  chainable form (each step from the previous value), so a Poly/Cosine/Linear decay continues
  smoothly from where it is and still reaches its floor at the new end.
- :func:`resize_iteration_loop`: the loop's end and what is tied to it (validation points,
  checkpoint interval).
- :func:`wrap_train_iterator`: put a wrapper around the loop's dataloader iterator.
"""
import warnings
from collections import Counter
from typing import Callable, List, Optional, Tuple

import mmengine
from mmengine.hooks import CheckpointHook

from mmengine.optim.scheduler.param_scheduler import (ConstantParamScheduler,
                                                      CosineAnnealingParamScheduler,
                                                      ExponentialParamScheduler,
                                                      LinearParamScheduler,
                                                      MultiStepParamScheduler,
                                                      PolyParamScheduler)

MMENGINE_VERSION = '0.10.7'
if mmengine.__version__ != MMENGINE_VERSION:
    warnings.warn(f'bnn_tasks.engine.mmengine_adapter is written against mmengine '
                  f'{MMENGINE_VERSION}, found {mmengine.__version__}: check re-fitting schedules '
                  'and resuming before trusting them')

# How each supported scheduler (and its LR/momentum subclasses) depends on its length, besides
# begin/end: the attribute that holds it, or None.
_SUPPORTED = [
    (PolyParamScheduler, 'total_iters'),  # end - begin - 1
    (LinearParamScheduler, 'total_iters'),
    (ConstantParamScheduler, 'total_iters'),
    (CosineAnnealingParamScheduler, 'T_max'),  # end - begin
    (MultiStepParamScheduler, 'milestones'),
    (ExponentialParamScheduler, None),
]


class UnsupportedScheduleError(ValueError):
    pass


def _schedulers(param_schedulers) -> List:
    if param_schedulers is None:
        return []
    if isinstance(param_schedulers, dict):  # one list per optimizer
        return [s for group in param_schedulers.values() for s in group]
    return list(param_schedulers)


def _length_attr(sched) -> Optional[str]:
    for cls, attr in _SUPPORTED:
        if isinstance(sched, cls):
            return attr
    raise UnsupportedScheduleError(
        f'{type(sched).__name__} cannot be re-fitted mid-run (supported: Poly, Linear, Constant, '
        'CosineAnnealing, MultiStep and Exponential schedulers)')


def check_refittable(param_schedulers) -> None:
    """Raise UnsupportedScheduleError if a scheduler cannot be remapped mid-run."""
    for s in _schedulers(param_schedulers):
        if getattr(s, 'by_epoch', False):
            raise UnsupportedScheduleError(f'{type(s).__name__} is epoch-based')
        _length_attr(s)


def refit_anchor(param_schedulers, now: int) -> int:
    """The iteration from which the schedule can move: ``now``, or the end of a linear ramp
    (a warm-up) still running. A linear ramp's chainable steps are ratios of its closed form
    for one length; changing the length mid-ramp would end it at the wrong value, so it
    finishes as planned and the points after it move."""
    ends = [s.end for s in _schedulers(param_schedulers)
            if isinstance(s, LinearParamScheduler) and s.begin <= now < s.end]
    return max([now] + ends)


def refit_schedulers(param_schedulers, now: int, old_max: int, new_max: int) -> None:
    """Map every scheduler point after ``refit_anchor`` (``now``, or the end of a running
    warm-up) from [anchor, old_max] onto [anchor, new_max].

    A scheduler already running keeps its begin; one that has ended is left alone.
    """
    check_refittable(param_schedulers)
    anchor = refit_anchor(param_schedulers, now)
    if not anchor < new_max:
        raise ValueError(f'new_max ({new_max}) must be past iteration {anchor} (the current '
                         'iteration or the end of a running warm-up)')
    scale = (new_max - anchor) / max(1, old_max - anchor)

    def remap(it: int) -> int:
        if it <= anchor:
            return it
        if it >= old_max:  # the end (or an open end past it) becomes the new end
            return new_max if it == old_max else it - old_max + new_max
        return anchor + max(1, int(round((it - anchor) * scale)))

    for s in _schedulers(param_schedulers):
        if s.end <= anchor:
            continue  # finished, or a warm-up that finishes as planned
        old_begin = s.begin
        s.begin, s.end = remap(s.begin), remap(s.end)
        attr = _length_attr(s)
        if attr == 'total_iters':  # the decay ends at step total_iters + 1 after begin
            s.total_iters = remap(old_begin + s.total_iters + 1) - s.begin - 1
        elif attr == 'T_max':  # the cosine reaches its floor T_max steps after begin
            s.T_max = max(1, remap(old_begin + s.T_max) - s.begin)
        elif attr == 'milestones':
            # milestones count steps from begin: map them through absolute iterations
            s.milestones = Counter({remap(old_begin + m) - s.begin: n
                                    for m, n in s.milestones.items()})


def resize_iteration_loop(runner, old_max: int, new_max: int, done: int) -> None:
    """Make ``runner``'s IterBasedTrainLoop end at ``new_max`` instead of ``old_max`` after
    ``done`` iterations, with the validation settings tied to the old end ("never", "only at the
    end") and about as many checkpoints as planned (learning-curve points)."""
    loop = runner.train_loop
    loop._max_iters = new_max
    if loop.val_begin > old_max:
        loop.val_begin = new_max + 1
    # (the loop re-reads val_interval from dynamic_intervals every iteration)
    loop.dynamic_intervals = [new_max if i == old_max else i for i in loop.dynamic_intervals]
    if loop.val_interval == old_max:
        loop.val_interval = new_max
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook) and not hook.by_epoch and 0 < hook.interval < old_max:
            hook.save_begin, hook.interval = _checkpoints_left(
                done, hook.interval, hook.save_begin,
                max(1, round(hook.interval * new_max / old_max)), new_max)


def _checkpoints_left(done: int, interval: int, save_begin: int, new_interval: int,
                      new_max: int) -> Tuple[int, int]:
    """(first iteration, spacing) of a CheckpointHook's saves after a re-fit at ``done``.

    The hook saves at ``save_begin + k * interval`` and at the end. The saves left are spread
    from one spacing after the last save to the end, none within half a spacing of another: a
    re-fit at half the planned iterations (``REFIT_AT``) meets the checkpoint saved there, and
    a rounded spacing would put a save a few iterations before the end's; either would be a
    second copy of one learning-curve point.
    """
    last_saved = (save_begin + (done - save_begin) // interval * interval
                  if done >= save_begin else 0)  # 0: none since the last re-fit
    first = (last_saved + new_interval if last_saved > 0
             else (done // new_interval + 1) * new_interval)
    first = max(first, done + 1)
    if new_max - first < new_interval / 2:
        return new_max, new_interval  # the end's own checkpoint is the next one
    gaps = max(1, round((new_max - first) / new_interval))
    return first, -(-(new_max - first) // gaps)


def wrap_train_iterator(loop, wrap: Callable) -> None:
    """Replace an IterBasedTrainLoop's dataloader iterator by ``wrap(iterator)``."""
    loop.dataloader_iterator = wrap(loop.dataloader_iterator)
