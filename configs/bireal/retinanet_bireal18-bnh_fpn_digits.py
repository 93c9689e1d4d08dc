# Bi-Real-18 RetinaNet with a binary neck and head tower (BiDet style): the FPN's 3x3 convs
# (extra levels included) and the head's stacked convs are binary, each a BinaryConvUnit (input
# BN, binary conv, output BN, real shortcut) followed by PReLU (a ReLU would leave the next
# binary conv only +1 inputs); 1x1 laterals and retina_cls/retina_reg float.
_base_ = './retinanet_bireal18_fpn_digits.py'
binary_unit = dict(type='BinaryConvUnit', method='bireal')
model = dict(
    neck=dict(conv_cfg=binary_unit),
    bbox_head=dict(type='BinaryRetinaHead', conv_cfg=binary_unit, norm_cfg=None,
                   act_cfg=dict(type='PReLU')))
