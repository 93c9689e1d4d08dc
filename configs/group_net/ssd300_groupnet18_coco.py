# Group-Net-18 (5 bases) SSD300: the binary counterpart of ../baselines/ssd300_r18_coco.py
_base_ = '../baselines/ssd300_r18_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='GroupNetResNet',
        depth=18,
        out_indices=(1, 2, 3),
        num_bases=5,
        norm_eval=False,
        # no ImageNet binary checkpoint ships with bnn_tasks; point this at one
        # (dict(type='Pretrained', checkpoint=...)) when you have it
        init_cfg=None),
)
