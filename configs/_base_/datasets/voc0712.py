# PASCAL VOC 2007+2012 trainval -> VOC2007 test at the standard path data/VOCdevkit;
# mmdet's own dataset config, unchanged (11-point mAP@0.5, the VOC2007 protocol).
_base_ = 'mmdet::_base_/datasets/voc0712.py'
