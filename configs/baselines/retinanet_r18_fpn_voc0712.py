# Full-precision ResNet-18 RetinaNet (FPN) on voc0712 (ImageNet-pretrained torchvision weights).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/voc0712.py',
    '../_base_/schedules/det_binary_1x.py',
]
custom_imports = dict(imports=['bnn_tasks'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]),
    bbox_head=dict(num_classes=20))

# VOC is repeated 3x per epoch by mmdet's voc0712 dataset config: 4 epochs = 12 passes
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=0.0,
         convert_to_iter_based=True),
]
