# Group-Net-18 (5 bases) FASTER-RCNN: the binary counterpart of ../baselines/faster-rcnn_r18_fpn_voc0712.py
_base_ = '../baselines/faster-rcnn_r18_fpn_voc0712.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='GroupNetResNet',
        depth=18,
        out_indices=(0, 1, 2, 3),
        num_bases=5,
        norm_eval=False,
        # no ImageNet binary checkpoint ships with bnn_tasks; point this at one
        # (dict(type='Pretrained', checkpoint=...)) when you have it
        init_cfg=None),
)
