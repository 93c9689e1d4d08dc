# Group-Net-18 (5 bases) RETINANET: the binary counterpart of ../baselines/retinanet_r18_fpn_digits.py
_base_ = '../baselines/retinanet_r18_fpn_digits.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='GroupNetResNet',
        depth=18,
        out_indices=(0, 1, 2, 3),
        num_bases=5,
        norm_eval=False,
        init_cfg=None),  # from scratch, like the float twin
)
