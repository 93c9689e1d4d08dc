# Bi-Real-18 Faster R-CNN with a binary neck and heads (BiDet style: only the first and last
# layers float): the FPN's 3x3 convs, the RPN's 3x3 conv and the RoI head's two shared fcs are
# binary; the stem, the 1x1 shortcuts/laterals and the cls/reg predictors stay float.
# Compare with faster-rcnn_bireal18_fpn_digits.py (binary backbone only) at the same budget.
_base_ = './faster-rcnn_bireal18_fpn_digits.py'
binary_conv = dict(type='BinaryConv', method='bireal')
model = dict(
    neck=dict(conv_cfg=binary_conv),  # k x k convs binary, 1x1 laterals float
    rpn_head=dict(type='BinaryRPNHead', conv_cfg=binary_conv),
    roi_head=dict(bbox_head=dict(type='BinaryFCBBoxHead', num_binary_fcs=2,
                                 conv_cfg=binary_conv)))
