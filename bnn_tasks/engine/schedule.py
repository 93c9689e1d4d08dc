"""Fit an iteration-based config to another iteration count or a wall-clock budget.

A budgeted run (the main job, the results table, ``tools/train.py --max-iters``) must keep the
config's recipe, warm-up then decay to the end, just shorter: cutting ``max_iters`` alone would
stop mid-schedule with a large learning rate, which is worse for binary nets than a complete
short schedule (signs settle when steps get small).
"""
import copy
from typing import List, Optional

from .time_budget_hook import TrainTimeBudgetHook  # noqa: F401  (registers the hook type)


def _iteration_based(cfg) -> bool:
    loop = cfg.get('train_cfg') or {}
    return loop.get('type') == 'IterBasedTrainLoop' or 'max_iters' in loop


def fit_schedule(cfg, max_iters: int, val_interval: Optional[int] = None):
    """Rescale ``cfg``'s iteration schedule to ``max_iters`` (in place; returns ``cfg``).

    The warm-up (a first scheduler that starts at 0 and ends before the old ``max_iters``) keeps
    its length but is capped at a tenth of the new run; every later scheduler is mapped
    linearly onto the rest, so a cosine/poly decay still reaches its floor at ``max_iters``.
    ``val_interval`` sets validation inside training, e.g. for learning curves: ``None`` means
    only at the end, ``0`` never (for a run scored afterwards by ``tools/test.py``; mmengine's
    loop would otherwise always validate at ``max_iters``). Checkpoints are written at least 4
    times per run.
    """
    if max_iters < 1:
        raise ValueError(f'max_iters must be >= 1, got {max_iters}')
    if val_interval is not None and val_interval < 0:
        raise ValueError(f'val_interval must be >= 0, got {val_interval}')
    if not _iteration_based(cfg):
        raise ValueError('fit_schedule needs an iteration-based config (IterBasedTrainLoop); '
                         f'train_cfg is {dict(cfg.get("train_cfg") or {})}')
    old_max = int(cfg.train_cfg['max_iters'])
    cfg.train_cfg['max_iters'] = max_iters
    if val_interval == 0:
        cfg.train_cfg['val_interval'] = max_iters
        cfg.train_cfg['val_begin'] = max_iters + 1  # past the last iteration: never
    else:
        cfg.train_cfg['val_interval'] = val_interval or max_iters
        cfg.train_cfg.pop('val_begin', None)

    schedulers: List[dict] = copy.deepcopy(list(cfg.get('param_scheduler') or []))
    old_warmup = new_warmup = 0
    if schedulers and schedulers[0].get('begin', 0) == 0 and \
            schedulers[0].get('end', old_max) < old_max:
        old_warmup = schedulers[0]['end']
        new_warmup = max(1, min(old_warmup, max_iters // 10))
        schedulers[0]['end'] = new_warmup

    def remap(it):  # old [old_warmup, old_max] -> new [new_warmup, max_iters]
        if it >= old_max:
            return max_iters
        frac = (it - old_warmup) / max(1, old_max - old_warmup)
        return int(round(new_warmup + frac * (max_iters - new_warmup)))

    for sched in schedulers[1 if old_warmup else 0:]:
        if sched.get('by_epoch', True):
            raise ValueError(f'fit_schedule: scheduler {sched.get("type")} is epoch-based')
        sched['begin'] = remap(sched.get('begin', 0))
        sched['end'] = remap(sched.get('end', old_max))
    cfg.param_scheduler = schedulers

    ckpt = cfg.get('default_hooks', {}).get('checkpoint')
    if ckpt is not None and ckpt.get('interval', 0) > 0:
        ckpt['interval'] = max(1, min(ckpt['interval'], -(-max_iters // 4)))
    return cfg


def add_time_budget(cfg, budget_minutes: float, refit: bool = False):
    """Stop training after ``budget_minutes`` (a checkpoint of the last iteration is kept).

    With ``refit`` the rest of the schedule is also re-fitted to the budget once the step time
    is measured (iteration-based configs only).
    """
    if budget_minutes <= 0:
        raise ValueError(f'budget_minutes must be > 0, got {budget_minutes}')
    if refit and not _iteration_based(cfg):
        raise ValueError('re-fitting the schedule to a budget needs an iteration-based config '
                         f'(IterBasedTrainLoop); train_cfg is {dict(cfg.get("train_cfg") or {})}')
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'TrainTimeBudgetHook']
    hook = dict(type='TrainTimeBudgetHook', budget_minutes=budget_minutes)
    if refit:
        hook['refit'] = True
    cfg.custom_hooks = hooks + [hook]
    return cfg
