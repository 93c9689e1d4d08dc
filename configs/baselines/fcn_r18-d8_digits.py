# Full-precision ResNet-18 FCN (dilated, output stride 8) on the built-in digits
# segmentation (11 classes): float twin of the binary FCN configs, trained from scratch.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    '../_base_/datasets/digits_segmentation.py',
    '../_base_/schedules/seg_binary_iter.py',
]
custom_imports = dict(imports=['bnn_tasks'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN needs a CUDA process group
max_iters = 6000
train_cfg = dict(max_iters=max_iters, val_interval=1000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=300),
    dict(type='PolyLR', eta_min=1e-6, power=0.9, by_epoch=False, begin=300, end=max_iters),
]
model = dict(
    data_preprocessor=dict(size=(256, 256)),
    pretrained=None,
    backbone=dict(
        type='ResNet',  # 7x7 stem like the binary backbones (ResNetV1c has a 3-conv stem)
        depth=18,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),  # output stride 8
        norm_cfg=norm_cfg,
        init_cfg=None),
    decode_head=dict(in_channels=512, channels=128, num_classes=11, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=64, num_classes=11, norm_cfg=norm_cfg))
