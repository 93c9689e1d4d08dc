# Full-precision ResNet-18 SSD300 on VOC07+12 (mmdet's SSD300 recipe, ResNet-18 for VGG-16).
_base_ = [
    '../_base_/models/ssd300_r18.py',
    '../_base_/datasets/voc0712.py',
    '../_base_/schedules/det_binary_1x.py',
]
custom_imports = dict(imports=['bnn_tasks'], allow_failed_imports=False)
input_size = 300
model = dict(
    bbox_head=dict(
        num_classes=20,
        anchor_generator=dict(basesize_ratio_range=(0.2, 0.9))))  # mmdet's VOC SSD300 sizes
# SSD's own augmentation (Expand + MinIoURandomCrop), as in mmdet's ssd300_voc0712.py
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Expand', mean=[123.675, 116.28, 103.53], to_rgb=True, ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.5, 1.5),
         saturation_range=(0.5, 1.5), hue_delta=18),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
voc_root = 'data/VOCdevkit/'
train_dataloader = dict(
    batch_size=8,
    dataset=dict(  # RepeatDataset(x3) of ConcatDataset(VOC2007, VOC2012) trainval
        dataset=dict(datasets=[
            dict(type='VOCDataset', data_root=voc_root,
                 ann_file='VOC2007/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2007/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                 pipeline=train_pipeline),
            dict(type='VOCDataset', data_root=voc_root,
                 ann_file='VOC2012/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2012/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                 pipeline=train_pipeline),
        ])))
val_dataloader = dict(batch_size=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=0.0,
         convert_to_iter_based=True),
]
