# Bi-Real-18 RetinaNet with a binary neck and head tower (BiDet style): the FPN's 3x3 convs
# (extra levels included) and the head's stacked convs are binary, with BN and PReLU (a ReLU
# would leave the next binary conv only +1 inputs); 1x1 laterals and retina_cls/retina_reg float.
_base_ = './retinanet_bireal18_fpn_digits.py'
binary_conv = dict(type='BinaryConv', method='bireal')
model = dict(
    neck=dict(conv_cfg=binary_conv),
    bbox_head=dict(type='BinaryRetinaHead', conv_cfg=binary_conv,
                   norm_cfg=dict(type='BN', requires_grad=True), act_cfg=dict(type='PReLU')))
