# Bi-Real Net-18 FASTER-RCNN: the binary counterpart of ../baselines/faster-rcnn_r18_fpn_digits.py
_base_ = '../baselines/faster-rcnn_r18_fpn_digits.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='BiRealResNet',
        depth=18,
        out_indices=(0, 1, 2, 3),
        norm_eval=False,
        init_cfg=None),  # from scratch, like the float twin
)
