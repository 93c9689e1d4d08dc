# Full-precision ResNet-18 Faster R-CNN (FPN) on the built-in digits: the float twin of the
# binary configs (same neck/heads/recipe), trained from scratch like them.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/digits_detection.py',
    '../_base_/schedules/det_binary_iter.py',
]
custom_imports = dict(imports=['bnn_tasks'], allow_failed_imports=False)
model = dict(
    # from scratch (no ImageNet) so float vs binary compares the convs alone; BN trains
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),  # 10 classes: 128-d is plenty
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # scale 4 -> anchors 16..256 px over strides 4..64, covering 16..80 px digits
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(
            # fixed 2x2 samples per bin: mmcv's CPU RoIAlign is a large share of step time
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
            out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=512, num_classes=10)),
    train_cfg=dict(
        # <= 6 digits per image: 300 proposals and 64 sampled RoIs (<= 16 positives) per
        # image are enough; RoIAlign backward time is linear in the RoI count
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(max_per_img=50)))
