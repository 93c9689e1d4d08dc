"""Stretch or shrink the rest of a running iteration schedule to a new ``max_iters``.

``fit_schedule`` fits a config before training starts, from an iteration count guessed by a
probe. Once the real step time is known the guess can be corrected mid-run: every scheduler
point after the current iteration (or after a warm-up still running) is mapped linearly from
``[now, old_max]`` onto ``[now, new_max]``. mmengine's schedulers compute their values in
chainable form (each step from the previous value), so a Poly/Cosine/Linear decay continues
smoothly from where it is and still reaches its floor at the new end.
"""
from collections import Counter
from typing import List, Optional

from mmengine.optim.scheduler.param_scheduler import (ConstantParamScheduler,
                                                      CosineAnnealingParamScheduler,
                                                      ExponentialParamScheduler,
                                                      LinearParamScheduler,
                                                      MultiStepParamScheduler,
                                                      PolyParamScheduler)

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
