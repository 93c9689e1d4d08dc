# Iteration-based segmentation schedule + mmseg runtime.
_base_ = ['mmseg::_base_/default_runtime.py', './binary_optim.py']
max_iters = 20000
val_interval = 2000
checkpoint_interval = 500  # in iterations: a killed run loses little and `--resume` continues
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # warm-up: Adam's early moments are noisy and BN statistics of binary layers start off
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    # poly decay, as mmseg's recipes, to a small floor
    dict(type='PolyLR', eta_min=1e-6, power=0.9, by_epoch=False, begin=500, end=max_iters),
]
# mmseg keeps its hooks in the schedule files, not in default_runtime: the full set here
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=checkpoint_interval,
                    max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
