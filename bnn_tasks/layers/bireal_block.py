"""Residual units and the basic block of binary ResNets.

Bi-Real Net's key idea is a real-valued shortcut around *every* binary convolution (not every
two), so the real activations survive the sign of the next layer:

    unit(x) = norm(binary_conv(x)) + shortcut(x)          (Bi-Real, norm after the conv)
    unit(x) = binary_conv(norm(x)) + shortcut(x)          (XNOR-Net / XNOR-Net++ order: norm,
                                                           then sign inside the conv)

A basic block is two such units. When the resolution or the width changes, the shortcut is
AvgPool (if strided) + a full-precision 1x1 conv + BN, as in Bi-Real Net: the pooling keeps the
full-precision path cheap and avoids the information loss of a strided 1x1 conv.
"""
from typing import Optional

from mmcv.cnn import build_norm_layer
from torch import Tensor, nn

from .binary_conv import BINARY_CONVS, BinaryConv2d

NORM_POSITIONS = ('after_conv', 'before_conv')


def make_downsample_shortcut(in_channels: int, out_channels: int, stride: int,
                             norm_cfg: dict) -> Optional[nn.Module]:
    """Full-precision shortcut for a change of resolution/width; ``None`` means identity."""
    if stride == 1 and in_channels == out_channels:
        return None
    layers = []
    if stride > 1:
        layers.append(nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True,
                                   count_include_pad=False))
    layers.append(nn.Conv2d(in_channels, out_channels, 1, bias=False))
    layers.append(build_norm_layer(norm_cfg, out_channels)[1])
    return nn.Sequential(*layers)


class BinaryResidualUnit(nn.Module):
    """One binary 3x3 conv with its norm and its real-valued shortcut.

    Args:
        in_channels, out_channels, stride, dilation: of the 3x3 conv (padding = dilation).
        conv_cfg: keyword arguments for the binary conv, including ``type`` (a class from
            ``bnn_tasks.layers``: ``BinaryConv2d`` or ``XNORPPConv2d``) and its binarizers.
        norm_cfg: mmcv norm config.
        norm_position: ``'after_conv'`` (Bi-Real) or ``'before_conv'`` (XNOR-Net order).
        shortcut: module applied to the input for the residual path (``None`` = identity).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 norm_position: str = 'after_conv', shortcut: Optional[nn.Module] = None):
        super().__init__()
        if norm_position not in NORM_POSITIONS:
            raise ValueError(f'norm_position must be one of {NORM_POSITIONS}, got {norm_position!r}')
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        self.norm_position = norm_position
        self.conv = build_binary_conv(conv_cfg, in_channels, out_channels, 3, stride=stride,
                                      padding=dilation, dilation=dilation)
        norm_channels = out_channels if norm_position == 'after_conv' else in_channels
        self.norm = build_norm_layer(norm_cfg, norm_channels)[1]
        self.shortcut = shortcut

    def forward(self, x: Tensor, identity: Optional[Tensor] = None) -> Tensor:
        """``identity`` lets a caller that already computed the shortcut (Group-Net) share it."""
        if identity is None:
            identity = x if self.shortcut is None else self.shortcut(x)
        if self.norm_position == 'after_conv':
            out = self.norm(self.conv(x))
        else:
            out = self.conv(self.norm(x))
        return out + identity


def build_binary_conv(conv_cfg: Optional[dict], in_channels: int, out_channels: int,
                      kernel_size: int, **kwargs) -> BinaryConv2d:
    """Build a binary conv from ``dict(type='BinaryConv2d' | 'XNORPPConv2d', **options)``."""
    cfg = dict(conv_cfg or {})
    conv_type = cfg.pop('type', 'BinaryConv2d')
    if conv_type not in BINARY_CONVS:
        raise KeyError(f'unknown binary conv type {conv_type!r}; known: {", ".join(BINARY_CONVS)}')
    return BINARY_CONVS[conv_type](in_channels, out_channels, kernel_size, **kwargs, **cfg)


class BinaryBasicBlock(nn.Module):
    """ResNet basic block made of two :class:`BinaryResidualUnit` (Bi-Real style).

    The first unit carries the block's stride and the downsampling shortcut.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 norm_position: str = 'after_conv', shortcut: Optional[nn.Module] = None):
        super().__init__()
        common = dict(dilation=dilation, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                      norm_position=norm_position)
        self.unit1 = BinaryResidualUnit(in_channels, out_channels, stride=stride,
                                        shortcut=shortcut, **common)
        self.unit2 = BinaryResidualUnit(out_channels, out_channels, stride=1, **common)

    def forward(self, x: Tensor, identity: Optional[Tensor] = None) -> Tensor:
        return self.unit2(self.unit1(x, identity))
