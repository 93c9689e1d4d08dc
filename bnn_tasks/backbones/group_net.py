"""Group-Net (Zhuang et al., CVPR 2019) as a detection/segmentation backbone, with BPAC.

Each block is K binary bases (Bi-Real style basic blocks) summed with learned scales. In dilated
stages (``dilations[i] > 1``, e.g. the output-stride-8 FCN backbone) the bases form a binary
parallel atrous convolution: base k uses its own rate ``bpac_rates[i][k]``. By default the rates
of a stage with dilation d are ``d * (1, 2, ..., K)``.

Example (mmseg config, output stride 8)::

    backbone=dict(type='GroupNetResNet', depth=18, num_bases=5,
                  strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
"""
from typing import Optional, Sequence

from ..layers import GroupNetBlock
from .binary_resnet import BinaryResNetBase
from .registry import register_backbone


@register_backbone
class GroupNetResNet(BinaryResNetBase):
    """Group-Net ResNet-18/34.

    Args:
        num_bases: K, the number of binary bases per block.
        bpac_rates: per stage, ``None`` or K dilation rates for that stage's bases. ``None`` for
            the whole argument means: stages with dilation 1 use rate 1 for every base, a stage
            with dilation d uses ``d * (1..K)``.
        Other arguments: see :class:`BinaryResNetBase`.
    """
    method = 'xnor'
    norm_position = 'after_conv'

    def __init__(self, *args, num_bases: int = 5,
                 bpac_rates: Optional[Sequence[Optional[Sequence[int]]]] = None, **kwargs):
        if num_bases < 1:
            raise ValueError(f'GroupNetResNet: num_bases must be >= 1, got {num_bases}')
        num_stages = kwargs.get('num_stages', 4)
        if bpac_rates is not None and len(bpac_rates) != num_stages:
            raise ValueError(f'GroupNetResNet: bpac_rates needs one entry per stage '
                             f'({num_stages}), got {len(bpac_rates)}')
        self.num_bases = num_bases
        self.bpac_rates = bpac_rates
        super().__init__(*args, **kwargs)

    def base_rates(self, stage_index: int, dilation: int):
        """The dilation rate of each base in a stage."""
        if self.bpac_rates is not None and self.bpac_rates[stage_index] is not None:
            rates = tuple(self.bpac_rates[stage_index])
            if len(rates) != self.num_bases:
                raise ValueError(f'GroupNetResNet: bpac_rates[{stage_index}] = {rates} needs '
                                 f'{self.num_bases} rates (one per base)')
            return rates
        if dilation == 1:
            return (1,) * self.num_bases
        return tuple(dilation * (k + 1) for k in range(self.num_bases))

    def make_block(self, stage_index, in_channels, out_channels, stride, dilation, shortcut):
        return GroupNetBlock(in_channels, out_channels, stride=stride,
                             base_dilations=self.base_rates(stage_index, dilation),
                             conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                             norm_position=self.norm_position, shortcut=shortcut)
