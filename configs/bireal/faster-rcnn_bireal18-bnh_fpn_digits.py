# Bi-Real-18 Faster R-CNN with a binary neck and heads (BiDet style: only the first and last
# layers float): the FPN's 3x3 convs, the RPN's 3x3 conv and the RoI head's two shared fcs are
# binary, each a BinaryConvUnit (input BN, binary conv, output BN, real shortcut: the FPN's
# features are not normalized); the stem, the 1x1 laterals and the cls/reg predictors are float.
# Compare with faster-rcnn_bireal18_fpn_digits.py (binary backbone only) at the same budget.
_base_ = './faster-rcnn_bireal18_fpn_digits.py'
binary_unit = dict(type='BinaryConvUnit', method='bireal')
model = dict(
    neck=dict(conv_cfg=binary_unit),  # k x k convs binary units, 1x1 laterals float
    rpn_head=dict(type='BinaryRPNHead', conv_cfg=binary_unit),
    roi_head=dict(bbox_head=dict(type='BinaryFCBBoxHead', num_binary_fcs=2,
                                 conv_cfg=dict(type='BinaryConv', method='bireal'))))
