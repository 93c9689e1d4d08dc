# Bi-Real-18 SSD256 with a binary neck and head tower (BiDet style): the extra levels' 3x3
# stride-2 convs of the SSD neck and one 3x3 conv per level in front of each predictor are
# binary, each a BinaryConvUnit (input BN, binary conv, output BN, real shortcut: AvgPool + 1x1
# projection where the size or width changes); the neck's 1x1 convs and the cls/reg predictors
# stay float. PReLU after the neck's 1x1 convs keeps the negative half of what the binary units
# binarize.
_base_ = './ssd256_bireal18_digits.py'
binary_unit = dict(type='BinaryConvUnit', method='bireal')
model = dict(
    neck=dict(conv_cfg=binary_unit, act_cfg=dict(type='PReLU')),
    bbox_head=dict(stacked_convs=1, feat_channels=128, conv_cfg=binary_unit, norm_cfg=None,
                   act_cfg=dict(type='ReLU')))
