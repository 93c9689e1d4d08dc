# Built-in digits dataset, VOC layout (VOCdevkit/VOC2007: Annotations/*.xml, JPEGImages/,
# ImageSets/Main/{train,val}.txt) with VOC mAP@0.5 as the metric.
_base_ = './digits_detection.py'
# XMLDataset (VOCDataset's parent) so the metric prints digit names, not VOC's 20 classes
dataset_type = 'XMLDataset'
voc_root = 'data/digits/VOCdevkit/'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        metainfo={{_base_.metainfo}},
        data_root=voc_root,
        ann_file='VOC2007/ImageSets/Main/train.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4, bbox_min_size=4),
        pipeline={{_base_.train_pipeline}},
        backend_args=None))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        metainfo={{_base_.metainfo}},
        data_root=voc_root,
        ann_file='VOC2007/ImageSets/Main/val.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}},
        backend_args=None))
test_dataloader = val_dataloader
# 'area' (all-point interpolation, VOC2010+) rather than the coarse 11-point VOC2007 variant
val_evaluator = dict(type='VOCMetric', metric='mAP', iou_thrs=[0.5], eval_mode='area')
test_evaluator = val_evaluator
