# Epoch-based 12-epoch detection schedule + mmdet runtime (COCO / VOC).
_base_ = ['mmdet::_base_/default_runtime.py', './binary_optim.py']
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # warm-up: Adam's early moments are noisy and BN statistics of binary layers start off
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    # cosine to 0 over the epochs: sign flips settle as steps shrink
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=0.0,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
env_cfg = dict(dist_cfg=dict(backend='nccl'))  # tools/train.py falls back to gloo without CUDA
auto_scale_lr = dict(enable=False, base_batch_size=16)
