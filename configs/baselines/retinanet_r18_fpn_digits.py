# Full-precision ResNet-18 RetinaNet (FPN) on the built-in digits: float twin of the binary
# configs, trained from scratch like them.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/digits_detection.py',
    '../_base_/schedules/det_binary_iter.py',
]
custom_imports = dict(imports=['bnn_tasks'], allow_failed_imports=False)
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(
        num_classes=10,
        in_channels=128,
        feat_channels=128,
        stacked_convs=2,  # half of mmdet's 4: the dense head dominates CPU time at 128-d
        # base 2 -> smallest anchors 16..25 px at stride 8, largest ~400 px at stride 128
        anchor_generator=dict(octave_base_scale=2)),
    test_cfg=dict(max_per_img=50))
