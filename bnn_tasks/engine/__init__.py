"""Training-loop helpers: hooks registered in mmengine's HOOKS (visible from mmdet and mmseg)
and budgeted schedules."""
from .schedule import add_time_budget, fit_schedule
from .optim_constructor import BinaryOptimWrapperConstructor
from .random_state_hook import RandomStateHook
from .time_budget_hook import TrainTimeBudgetHook

__all__ = ['BinaryOptimWrapperConstructor', 'RandomStateHook', 'TrainTimeBudgetHook',
           'add_time_budget', 'fit_schedule']
