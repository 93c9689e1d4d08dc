"""XNOR-Net++ (Bulat & Tzimiropoulos, BMVC 2019) as a detection/segmentation backbone.

Weights are plain signs; instead of XNOR-Net's analytic scales, each binary conv learns output
scale factors alpha (per channel) x beta (per row) x gamma (per column), trained with the rest of
the network. beta/gamma are learned as short vectors and resampled to the real feature-map size,
so the backbone runs at any input resolution. Blocks keep XNOR-Net's order: BatchNorm, then sign
inside the conv, with a real-valued shortcut around every conv.

Example (mmdet config)::

    backbone=dict(type='XNORPPResNet', depth=18, spatial_size=16)
"""
from ..layers import BinaryBasicBlock
from .binary_resnet import BinaryResNetBase
from .registry import register_backbone


@register_backbone
class XNORPPResNet(BinaryResNetBase):
    """XNOR-Net++ ResNet-18/34.

    Args:
        spatial_size: length of the learned beta/gamma vectors of every conv.
        Other arguments: see :class:`BinaryResNetBase`.
    """
    method = 'xnorpp'
    norm_position = 'before_conv'

    def __init__(self, *args, spatial_size: int = 16, **kwargs):
        self.spatial_size = spatial_size
        super().__init__(*args, **kwargs)

    def make_block(self, stage_index, in_channels, out_channels, stride, dilation, shortcut):
        conv_cfg = dict(self.conv_cfg, spatial_size=self.spatial_size)
        return BinaryBasicBlock(in_channels, out_channels, stride=stride, dilation=dilation,
                                conv_cfg=conv_cfg, norm_cfg=self.norm_cfg,
                                norm_position=self.norm_position, shortcut=shortcut)
