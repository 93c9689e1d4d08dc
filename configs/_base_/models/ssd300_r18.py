# SSD300 with a ResNet-18 backbone in place of VGG-16 (for COCO / VOC at 300x300).
_base_ = 'mmdet::_base_/models/ssd300.py'
model = dict(
    # ResNet has BN, so inputs get the usual std normalisation (VGG-SSD used std 1)
    data_preprocessor=dict(std=[58.395, 57.12, 57.375]),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        # strides 8/16/32 -> 38/19/10 maps at 300 px, exactly VGG-SSD300's first three levels
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(
        in_channels=(128, 256, 512),
        out_channels=(128, 256, 512, 256, 256, 256),  # + 3 extra levels: 5, 3, 1
        level_strides=(2, 2, 1),
        level_paddings=(1, 1, 0),
        l2_norm_scale=None),  # L2Norm was for VGG's unnormalised conv4_3; ResNet has BN
    bbox_head=dict(in_channels=(128, 256, 512, 256, 256, 256)))
