"""Training-loop helpers registered in mmengine's HOOKS (visible from mmdet and mmseg)."""
from .time_budget_hook import TrainTimeBudgetHook

__all__ = ['TrainTimeBudgetHook']
