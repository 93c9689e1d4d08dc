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
# background is 97% of the pixels: unweighted, every backbone (float too) first learns to predict
# background everywhere (measured: mIoU 8.8 = background only after 150 iterations), and with
# weight 0.5 the decode head still did after 400 iterations from a pretrained Group-Net. So
# background counts 0.1 in both losses; the decode head removes that prior shift at inference
# (PriorCorrectedFCNHead: logits - log(weight)), since the shifted argmax would cap the ideal
# stride-8 mIoU at 48.4 instead of 71.8 (tools/seg_stride_ceiling.py).
class_weight = [0.1] + [1.0] * 10
model = dict(
    data_preprocessor=dict(size=(128, 128)),  # = crop_size of the dataset config
    pretrained=None,
    backbone=dict(
        type='ResNet',  # 7x7 stem like the binary backbones (ResNetV1c has a 3-conv stem)
        depth=18,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),  # output stride 8
        norm_cfg=norm_cfg,
        init_cfg=None),
    decode_head=dict(type='PriorCorrectedFCNHead', in_channels=512, channels=128,
                     num_classes=11, norm_cfg=norm_cfg,
                     loss_decode=dict(class_weight=class_weight)),
    auxiliary_head=dict(in_channels=256, channels=64, num_classes=11, norm_cfg=norm_cfg,
                        loss_decode=dict(class_weight=class_weight)))
