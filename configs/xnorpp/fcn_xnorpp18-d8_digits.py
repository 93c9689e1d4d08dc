# XNOR-Net++-18 FCN: the binary counterpart of ../baselines/fcn_r18-d8_digits.py
_base_ = '../baselines/fcn_r18-d8_digits.py'
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='XNORPPResNet',
        depth=18,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),  # output stride 8
        out_indices=(0, 1, 2, 3),
        norm_eval=False,
        init_cfg=None),  # from scratch, like the float twin
)
