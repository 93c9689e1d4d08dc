"""Bi-Real Net (Liu et al., ECCV 2018) as a detection/segmentation backbone.

Every binary 3x3 conv has its own real-valued shortcut (``BinaryResidualUnit``), activations are
binarized with ApproxSign (its piecewise-polynomial gradient is closer to the true sign than a
clipped identity), weights with sign times the per-channel mean magnitude. Downsampling
shortcuts are AvgPool + full-precision 1x1 conv + BN. The 7x7 stem (conv, BN,
max-pool; no ReLU, see ``BinaryResNetBase``) stays full precision.

Example (mmdet config)::

    backbone=dict(type='BiRealResNet', depth=18, out_indices=(0, 1, 2, 3))
"""
from ..layers import BinaryBasicBlock
from .binary_resnet import BinaryResNetBase
from .registry import register_backbone


@register_backbone
class BiRealResNet(BinaryResNetBase):
    """Bi-Real ResNet-18/34. Arguments: see :class:`BinaryResNetBase`."""
    method = 'bireal'
    norm_position = 'after_conv'

    def make_block(self, stage_index, in_channels, out_channels, stride, dilation, shortcut):
        return BinaryBasicBlock(in_channels, out_channels, stride=stride, dilation=dilation,
                                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                norm_position=self.norm_position, shortcut=shortcut)
