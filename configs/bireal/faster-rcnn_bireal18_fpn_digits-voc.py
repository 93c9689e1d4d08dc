# Bi-Real Net-18 Faster R-CNN on the VOC-layout copy of the digits
# (data/digits/VOCdevkit/VOC2007, Annotations/*.xml), scored with VOC mAP@0.5 only.
_base_ = './faster-rcnn_bireal18_fpn_digits.py'
voc_root = 'data/digits/VOCdevkit/'
metainfo = dict(classes=('0', '1', '2', '3', '4', '5', '6', '7', '8', '9'))
# XMLDataset (VOCDataset's parent) so the metric table prints digit names, not VOC's 20 classes
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='XMLDataset',
        metainfo=metainfo,
        data_root=voc_root,
        ann_file='VOC2007/ImageSets/Main/train.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4, bbox_min_size=4),
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='XMLDataset',
        metainfo=metainfo,
        data_root=voc_root,
        ann_file='VOC2007/ImageSets/Main/val.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='VOCMetric', metric='mAP', iou_thrs=[0.5],
                     eval_mode='area')
test_evaluator = val_evaluator
