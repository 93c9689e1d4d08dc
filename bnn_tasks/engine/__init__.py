"""Training-loop helpers: hooks registered in mmengine's HOOKS (visible from mmdet and mmseg)
and budgeted schedules."""
from .schedule import add_time_budget, fit_schedule
from .time_budget_hook import TrainTimeBudgetHook

__all__ = ['TrainTimeBudgetHook', 'add_time_budget', 'fit_schedule']
