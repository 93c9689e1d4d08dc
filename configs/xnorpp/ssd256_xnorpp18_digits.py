# XNOR-Net++-18 SSD256: the binary counterpart of ../baselines/ssd256_r18_digits.py
_base_ = '../baselines/ssd256_r18_digits.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='XNORPPResNet',
        depth=18,
        out_indices=(1, 2, 3),
        norm_eval=False,
        init_cfg=None),  # from scratch, like the float twin
)
