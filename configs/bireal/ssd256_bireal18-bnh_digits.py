# Bi-Real-18 SSD256 with a binary neck and head tower (BiDet style): the extra levels' 3x3
# stride-2 convs of the SSD neck and one binary 3x3 conv (BN, PReLU) per level in front of each
# predictor are binary; the neck's 1x1 convs and the cls/reg predictors stay float. PReLU, not
# ReLU, in the neck: its 1x1 conv feeds a binary conv, which would see only +1 after a ReLU.
_base_ = './ssd256_bireal18_digits.py'
binary_conv = dict(type='BinaryConv', method='bireal')
model = dict(
    neck=dict(conv_cfg=binary_conv, act_cfg=dict(type='PReLU')),
    bbox_head=dict(stacked_convs=1, feat_channels=128, conv_cfg=binary_conv,
                   norm_cfg=dict(type='BN', requires_grad=True), act_cfg=dict(type='ReLU')))
