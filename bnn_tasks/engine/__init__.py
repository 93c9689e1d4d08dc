"""Training-loop helpers: hooks registered in mmengine's HOOKS (visible from mmdet and mmseg)
and budgeted schedules."""
from .schedule import add_time_budget, fit_schedule
from .optim_constructor import BinaryOptimWrapperConstructor
from .mixed_precision import CPUAmpOptimWrapper, use_mixed_precision
from .random_state_hook import RandomStateHook
from .binarization_warmup_hook import BinarizationWarmupHook
from .time_budget_hook import TrainTimeBudgetHook
from .recipe import binary_stage, float_stage, split_budget, student_config
from .. import models  # noqa: F401  (registers DistillingModel, the recipe's stage-2 wrapper)

__all__ = ['BinarizationWarmupHook', 'BinaryOptimWrapperConstructor', 'CPUAmpOptimWrapper',
           'RandomStateHook', 'TrainTimeBudgetHook', 'add_time_budget', 'binary_stage',
           'fit_schedule', 'float_stage', 'split_budget', 'student_config',
           'use_mixed_precision']
