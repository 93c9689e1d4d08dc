# COCO 2017 at the standard path data/coco (annotations/instances_{train,val}2017.json,
# train2017/, val2017/); mmdet's own dataset config, unchanged.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'
