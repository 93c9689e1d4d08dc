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
        out_indices=(0, 1, 2, 3),
        num_bases=5,
        # binary parallel atrous conv: each base of a dilated stage has its own rate. The
        # default d * (1..5) reaches rate 20 in stage 4, wider than its 16x16 maps on 128 px
        # crops (the base would degrade to a 1x1 conv), so digits use small distinct rates
        bpac_rates=(None, None, (1, 2, 3, 4, 5), (2, 3, 4, 5, 6)),
        norm_eval=False,
        init_cfg=None),  # from scratch, like the float twin
)
