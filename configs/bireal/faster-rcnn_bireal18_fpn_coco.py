# Bi-Real Net-18 FASTER-RCNN: the binary counterpart of ../baselines/faster-rcnn_r18_fpn_coco.py
_base_ = '../baselines/faster-rcnn_r18_fpn_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='BiRealResNet',
        depth=18,
        out_indices=(0, 1, 2, 3),
        norm_eval=False,
        # no ImageNet binary checkpoint ships with bnn_tasks; point this at one
        # (dict(type='Pretrained', checkpoint=...)) when you have it
        init_cfg=None),
)
