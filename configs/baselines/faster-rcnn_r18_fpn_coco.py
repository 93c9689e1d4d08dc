# Full-precision ResNet-18 Faster R-CNN (FPN) on coco (ImageNet-pretrained torchvision weights).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/det_binary_1x.py',
]
custom_imports = dict(imports=['bnn_tasks'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]),
    roi_head=dict(bbox_head=dict(num_classes=80)))

