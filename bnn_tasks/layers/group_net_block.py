"""Group-Net block and binary parallel atrous convolution (BPAC).

Group-Net (Zhuang et al., CVPR 2019) approximates a real-valued block by K binary "bases", each a
binary block, combined with learned per-base scales:

    block(x) = sum_k lambda_k * base_k(x)

In dilated (atrous) stages, BPAC gives each base its own dilation rate, so the K binary branches
see K receptive fields in parallel (like ASPP, but inside the backbone). The bases share one
full-precision downsampling shortcut, computed once.

Bases that share one dilation run as wide ops (``fused_bases``: one sign, one stacked or
grouped conv, one batch norm for all bases), the same function as the loop over the bases with
K times fewer ops. BPAC bases with distinct rates, ``fuse_bases=False`` and bases with hooks
(the exporter's) run the loop.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .bireal_block import BinaryBasicBlock
from .fused_bases import can_fuse, fused_units_forward, weighted_base_sum


class GroupNetBlock(nn.Module):
    """K binary basic blocks in parallel, summed with learned scales.

    Args:
        in_channels, out_channels, stride: as for a ResNet basic block.
        base_dilations: one dilation rate per base (its length is K). Equal rates give the plain
            Group-Net block; distinct rates give BPAC.
        conv_cfg, norm_cfg, norm_position: passed to each base (see ``BinaryBasicBlock``).
        shortcut: the shared downsampling shortcut (``None`` = identity).
        fuse_bases: compute the bases as wide ops when their layers allow it (see
            ``fused_bases.can_fuse``); ``False`` always loops over the bases.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 base_dilations: Sequence[int] = (1, 1, 1, 1, 1),
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 norm_position: str = 'after_conv', shortcut: Optional[nn.Module] = None,
                 fuse_bases: bool = True):
        super().__init__()
        base_dilations = tuple(int(d) for d in base_dilations)
        if not base_dilations or min(base_dilations) < 1:
            raise ValueError(f'base_dilations must be a non-empty list of rates >= 1, '
                             f'got {base_dilations}')
        self.base_dilations = base_dilations
        self.shortcut = shortcut
        self.bases = nn.ModuleList(
            BinaryBasicBlock(in_channels, out_channels, stride=stride, dilation=d,
                             conv_cfg=conv_cfg, norm_cfg=norm_cfg, norm_position=norm_position)
            for d in base_dilations)
        # Equal shares at start, so the summed identity paths add up to one identity.
        k = len(base_dilations)
        self.base_scales = nn.Parameter(torch.full((k,), 1.0 / k))
        self.fuse_bases = fuse_bases

    @property
    def num_bases(self) -> int:
        return len(self.bases)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        units1 = [base.unit1 for base in self.bases]
        units2 = [base.unit2 for base in self.bases]
        if self.fuse_bases and can_fuse(units1) and can_fuse(units2):
            return self.forward_fused(x, identity, units1, units2)
        return self.forward_separate(x, identity)

    def forward_separate(self, x: Tensor, identity: Tensor) -> Tensor:
        """The definition: each base on its own, summed with its scale."""
        out = 0
        for scale, base in zip(self.base_scales, self.bases):
            out = out + scale * base(x, identity)
        return out

    def forward_fused(self, x: Tensor, identity: Tensor, units1, units2) -> Tensor:
        """The same function with the K bases side by side as ``(N, K*C, H, W)``."""
        y = fused_units_forward(units1, x, identity, shared_input=True)
        y = fused_units_forward(units2, y, y, shared_input=False)
        return weighted_base_sum(y, self.base_scales)
