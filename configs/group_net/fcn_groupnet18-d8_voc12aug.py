# Group-Net-18 (5 bases) FCN: the binary counterpart of ../baselines/fcn_r18-d8_voc12aug.py
_base_ = '../baselines/fcn_r18-d8_voc12aug.py'
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
        # no ImageNet binary checkpoint ships with bnn_tasks; point this at one
        # (dict(type='Pretrained', checkpoint=...)) when you have it
        init_cfg=None),
)
