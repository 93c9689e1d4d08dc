# Iteration-based detection schedule + mmdet runtime (for the small built-in digits set).
_base_ = ['mmdet::_base_/default_runtime.py', './binary_optim.py']
max_iters = 6000
val_interval = 1000
checkpoint_interval = 250  # in iterations: a killed run loses little and `--resume` continues
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # warm-up: Adam's early moments are noisy and BN statistics of binary layers start off
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=300),
    # cosine to 0: binary nets settle signs at the end of training when steps get small
    dict(type='CosineAnnealingLR', by_epoch=False, begin=300, end=max_iters, eta_min=0.0),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=checkpoint_interval,
                    max_keep_ckpts=3, save_last=True))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
# CPU-first: gloo works everywhere (nccl needs CUDA); tools/train.py keeps it on CPU machines.
env_cfg = dict(dist_cfg=dict(backend='gloo'))
