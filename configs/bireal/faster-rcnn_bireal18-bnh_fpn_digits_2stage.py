# Two-stage recipe, stage 2 of the binary-neck-and-heads Faster R-CNN: the schedule of
# faster-rcnn_bireal18_fpn_digits_2stage.py (which binarizes the backbone only) with the binary
# neck and heads of faster-rcnn_bireal18-bnh_fpn_digits.py:
#   python tools/train.py configs/bireal/faster-rcnn_bireal18-bnh-fp_fpn_digits.py
#   python tools/train.py configs/bireal/faster-rcnn_bireal18-bnh_fpn_digits_2stage.py
_base_ = './faster-rcnn_bireal18_fpn_digits_2stage.py'
load_from = 'work_dirs/faster-rcnn_bireal18-bnh-fp_fpn_digits/iter_6000.pth'
binary_conv = dict(type='BinaryConv', method='bireal')
model = dict(
    neck=dict(conv_cfg=binary_conv),
    rpn_head=dict(type='BinaryRPNHead', conv_cfg=binary_conv),
    roi_head=dict(bbox_head=dict(type='BinaryFCBBoxHead', num_binary_fcs=2,
                                 conv_cfg=binary_conv)))
