"""A binary conv that can stand in for a float conv of a neck or head.

A float FPN's features are not normalized: measured on a trained Bi-Real-18 Faster R-CNN whose
FPN 3x3 convs are plain binary convs (``conv_cfg`` type ``'BinaryConv'``), their inputs had a
standard deviation of ~40, so 98 % of the values sat outside the [-1, 1] window where sign's
straight-through gradient (and the float stage's clip) pass anything: the binary convs passed
almost no gradient back to the laterals and the backbone, and the detector barely learned
(VOC mAP@0.5 0.347 against 0.837 with a float neck). The unit fixes both sides:

    unit(x) = norm_out(binary_conv(norm_in(x))) + shortcut(x)

* ``norm_in`` puts the input in the binarizer's window and learns each channel's sign threshold
  (ReActNet's learned-threshold sign, as a BN shift);
* the real-valued ``shortcut`` (identity, or Bi-Real's AvgPool + 1x1 conv + BN projection when
  the resolution or width changes) carries the float signal and its gradient around the conv, so
  a unit starts near identity instead of destroying its input;
* ``norm_out`` folds into the exported op's output scale and bias, and the shortcut add into its
  ``residual`` input: one ``bnn_tasks::BinaryConv2d`` node plus one input ``BatchNormalization``.

It exposes ``nn.Conv2d``'s geometry attributes so mmcv's ``ConvModule`` accepts it as a conv.
"""
from typing import Optional

from mmcv.cnn import build_norm_layer
from torch import Tensor, nn

from .bireal_block import make_downsample_shortcut


class BinaryConvUnit(nn.Module):
    """``norm_out(binary_conv(norm_in(x))) + shortcut(x)``.

    Args:
        conv: the binary conv (its geometry is the unit's).
        norm_cfg: mmcv norm config of ``norm_in`` and ``norm_out``.
        project_shortcut: when the conv changes resolution or width, use a float projection
            shortcut (True) or none (False: e.g. a binary fc from 6272 to 512 features, where a
            float projection would cost as much as the float fc the binary one replaces).
    """

    transposed = False

    def __init__(self, conv: nn.Conv2d, norm_cfg: Optional[dict] = None,
                 project_shortcut: bool = True):
        super().__init__()
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        self.norm_in = build_norm_layer(norm_cfg, conv.in_channels)[1]
        self.conv = conv
        self.norm_out = build_norm_layer(norm_cfg, conv.out_channels)[1]
        stride = conv.stride[0]
        if conv.stride[0] != conv.stride[1]:
            raise ValueError(f'BinaryConvUnit needs equal strides, got {conv.stride}')
        same_shape = stride == 1 and conv.in_channels == conv.out_channels
        same_padding = all(2 * p == d * (k - 1) for p, d, k in
                           zip(conv.padding, conv.dilation, conv.kernel_size))
        if (same_shape or project_shortcut) and not same_padding:
            raise ValueError(
                f'BinaryConvUnit: a {conv.kernel_size} conv with padding {conv.padding} and '
                f'dilation {conv.dilation} changes the size beyond its stride, so no shortcut '
                'can match it; give it "same" padding (dilation * (kernel - 1) / 2) or use '
                "conv_cfg type 'BinaryConv'")
        # None: no shortcut; make_downsample_shortcut's None for an unchanged shape is identity
        self.shortcut = None
        if same_shape or project_shortcut:
            self.shortcut = make_downsample_shortcut(conv.in_channels, conv.out_channels, stride,
                                                     norm_cfg) or nn.Identity()
        for attr in ('in_channels', 'out_channels', 'kernel_size', 'stride', 'padding',
                     'dilation', 'output_padding', 'groups'):
            setattr(self, attr, getattr(conv, attr))

    def init_weights(self):
        """The conv keeps PyTorch's default init (ConvModule would kaiming-init a bare conv)."""

    @property
    def has_shortcut(self) -> bool:
        return self.shortcut is not None

    def forward(self, x: Tensor) -> Tensor:
        out = self.norm_out(self.conv(self.norm_in(x)))
        return out if self.shortcut is None else out + self.shortcut(x)
