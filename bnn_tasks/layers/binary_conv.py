"""Binary convolutions.

``BinaryConv2d`` is an ``nn.Conv2d`` whose operands go through an input and a kernel binarizer
given by name or config (larq style). It computes

    y = conv2d(input_quantizer(x), sign(W)) * scale[o] (+ bias[o])

with zero padding of the sign tensor, exactly what the exported ``bnn_tasks::BinaryConv2d`` op
computes (``deploy/OP_CONTRACT.md``). Applying the per-channel scale to the output rather than to
the weights keeps the conv operands pure +-1.

``XNORPPConv2d`` replaces the analytic scale with XNOR-Net++'s learned factors
alpha[o] x beta[h] x gamma[w]. beta and gamma are learned as short vectors and resampled to the
real output size, so the layer works at any input resolution.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..binarizers import BinarizerCfg, build_binarizer, channel_mean_abs


class BinaryConv2d(nn.Conv2d):
    """Conv2d with binarized activations and weights.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias:
            as for ``nn.Conv2d`` (``padding_mode`` is always zeros).
        input_quantizer: activation binarizer name/config (``'ste_sign'``, ``'approx_sign'``...).
        kernel_quantizer: weight binarizer name/config (``'scaled_sign'``, ``'sign'``...).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = False,
                 input_quantizer: BinarizerCfg = 'ste_sign',
                 kernel_quantizer: BinarizerCfg = 'scaled_sign'):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias)
        self.input_quantizer = build_binarizer(input_quantizer, 'input')
        self.kernel_quantizer = build_binarizer(kernel_quantizer, 'kernel')

    def binarized_weight(self):
        """``(signs, scale)``: the +-1 weights the conv multiplies and the per-channel scale."""
        return self.kernel_quantizer(self.weight)

    def output_factors(self, out_h: int, out_w: int
                       ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """``(channel[C_out], row[out_h] or None, col[out_w] or None)`` for an output of that size.

        The layer computes ``conv(input_quantizer(x), signs) * channel[o] * row[h] * col[w]
        (+ bias[o])``; export folds these factors into the op's post_scale/row_scale/col_scale.
        """
        _, scale = self.binarized_weight()
        if scale is None:
            scale = torch.ones(self.out_channels, dtype=self.weight.dtype,
                               device=self.weight.device)
        return scale, None, None

    def _output_scale(self, y: Tensor, scale):
        return y if scale is None else y * scale.view(1, -1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        x_bin = self.input_quantizer(x)
        w_bin, scale = self.binarized_weight()
        y = F.conv2d(x_bin, w_bin, None, self.stride, self.padding, self.dilation, self.groups)
        y = self._output_scale(y, scale)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


class XNORPPConv2d(BinaryConv2d):
    """XNOR-Net++ convolution: sign weights, output scaled by learned alpha x beta x gamma.

    Args:
        spatial_size: length of the learned beta (rows) and gamma (columns) vectors; they are
            linearly resampled to the actual output height/width.
        Other args as :class:`BinaryConv2d` (the kernel binarizer defaults to plain ``'sign'``).
    """

    def __init__(self, *args, spatial_size: int = 16, kernel_quantizer: BinarizerCfg = 'sign',
                 **kwargs):
        super().__init__(*args, kernel_quantizer=kernel_quantizer, **kwargs)
        if spatial_size < 1:
            raise ValueError(f'spatial_size must be >= 1, got {spatial_size}')
        # alpha starts at the mean weight magnitude (what XNOR-Net would compute analytically).
        with torch.no_grad():
            alpha = channel_mean_abs(self.weight)
        self.alpha = nn.Parameter(alpha.clone())
        self.beta = nn.Parameter(torch.ones(spatial_size))
        self.gamma = nn.Parameter(torch.ones(spatial_size))

    @staticmethod
    def _resample(v: Tensor, size: int) -> Tensor:
        if v.numel() == size:
            return v
        return F.interpolate(v.view(1, 1, -1), size=size, mode='linear',
                             align_corners=True).view(size)

    def spatial_factors(self, out_h: int, out_w: int):
        """``(alpha[C_out], beta[out_h], gamma[out_w])`` for an output of that size."""
        return self.alpha, self._resample(self.beta, out_h), self._resample(self.gamma, out_w)

    def output_factors(self, out_h: int, out_w: int
                       ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """The weight binarizer's scale times alpha per channel, beta per row, gamma per column."""
        scale, _, _ = super().output_factors(out_h, out_w)
        alpha, beta, gamma = self.spatial_factors(out_h, out_w)
        return scale * alpha, beta, gamma

    def _output_scale(self, y: Tensor, scale):
        y = super()._output_scale(y, scale)
        alpha, beta, gamma = self.spatial_factors(y.shape[-2], y.shape[-1])
        return y * (alpha.view(1, -1, 1, 1) * beta.view(1, 1, -1, 1) * gamma.view(1, 1, 1, -1))


# Binary conv classes selectable by name in configs (``conv_cfg=dict(type=...)``).
BINARY_CONVS = {cls.__name__: cls for cls in (BinaryConv2d, XNORPPConv2d)}
