# PASCAL VOC 2012 + SBD augmented masks (10582 train images) at the standard mmseg path
# data/VOCdevkit/VOC2012 (SegmentationClassAug/, ImageSets/Segmentation/aug.txt, see
# docs/datasets.md); mmseg's own dataset config with the label check after loading masks.
_base_ = 'mmseg::_base_/datasets/pascal_voc12_aug.py'
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabels', num_classes=21),  # out-of-range labels fail loudly, by file
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(
            type='PascalVOCDataset',
            data_root='data/VOCdevkit/VOC2012',
            data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file='ImageSets/Segmentation/train.txt',
            pipeline=train_pipeline),
        dict(
            type='PascalVOCDataset',
            data_root='data/VOCdevkit/VOC2012',
            data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
            ann_file='ImageSets/Segmentation/aug.txt',
            pipeline=train_pipeline),
    ]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
