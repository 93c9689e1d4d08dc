# Group-Net-18 (5 bases) FCN: the binary counterpart of ../baselines/fcn_r18-d8_digits.py
_base_ = '../baselines/fcn_r18-d8_digits.py'
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='GroupNetResNet',
        depth=18,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),  # output stride 8
        # binary parallel atrous conv: in a stage of dilation d base k uses rate
        # d * k (k = 1..5), each base its own receptive field
        out_indices=(0, 1, 2, 3),
        num_bases=5,
        norm_eval=False,
        init_cfg=None),  # from scratch, like the float twin
)
