# Bi-Real Net-18 SSD300: the binary counterpart of ../baselines/ssd300_r18_coco.py
_base_ = '../baselines/ssd300_r18_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='BiRealResNet',
        depth=18,
        out_indices=(1, 2, 3),
        norm_eval=False,
        # no ImageNet binary checkpoint ships with bnn_tasks; point this at one
        # (dict(type='Pretrained', checkpoint=...)) when you have it
        init_cfg=None),
)
