# Full-precision ResNet-18 SSD on the built-in digits (256x256 input): float twin of the
# binary configs, trained from scratch like them.
_base_ = [
    'mmdet::_base_/models/ssd300.py',
    '../_base_/datasets/digits_detection.py',
    '../_base_/schedules/det_binary_iter.py',
]
custom_imports = dict(imports=['bnn_tasks'], allow_failed_imports=False)
input_size = 256
model = dict(
    # ResNet has BN, so inputs get the usual std normalisation (VGG-SSD used std 1)
    data_preprocessor=dict(std=[58.395, 57.12, 57.375]),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        # strides 8/16/32 (128/256/512 ch): stride 8 is where SSD300's VGG conv4_3 sits,
        # and 16 px digits need it
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        in_channels=(128, 256, 512),
        out_channels=(128, 256, 512, 256, 256),  # + 2 extra levels: strides 64, 128
        level_strides=(2, 2),
        level_paddings=(1, 1),
        l2_norm_scale=None),  # L2Norm was for VGG's unnormalised conv4_3; ResNet has BN
    bbox_head=dict(
        in_channels=(128, 256, 512, 256, 256),
        num_classes=10,
        anchor_generator=dict(
            _delete_=True,
            type='SSDAnchorGenerator',
            scale_major=False,
            input_size=input_size,
            strides=[8, 16, 32, 64, 128],
            # explicit sizes: SSDAnchorGenerator only derives them for 300/512 inputs;
            # 16..240 px covers the 16..80 px digits with room for tall boxes
            min_sizes=[16, 32, 56, 96, 160],
            max_sizes=[32, 56, 96, 160, 240],
            ratios=[[2], [2, 3], [2, 3], [2], [2]])),
    test_cfg=dict(max_per_img=50))
