"""Binarize any timm CNN and use it as a detection/segmentation backbone.

``BinaryTimmBackbone`` builds ``timm.create_model(model_name, features_only=True)`` and swaps every
plain ``nn.Conv2d`` except the stem for a binary conv of the chosen method (``'bireal'``,
``'xnor'``, ``'xnorpp'``; see ``bnn_tasks.layers.BINARY_METHODS``), copying its geometry and
latent weights. The feature maps' channels and strides are those of the timm model
(``out_channels``/``strides`` attributes), so the neck config must use them.

Example (mmdet config)::

    backbone=dict(type='BinaryTimmBackbone', model_name='resnet18', method='bireal',
                  out_indices=(1, 2, 3, 4))
    neck=dict(type='FPN', in_channels=[64, 128, 256, 512], ...)
"""
import fnmatch
from typing import Iterable, List, Optional, Sequence

from mmengine.model import BaseModule
from torch import nn

from ..layers import build_binary_conv, method_conv_cfg
from ..layers.binary_conv import BinaryConv2d
from ..layers.methods import DEFAULT_METHOD
from .registry import register_backbone


def binarize_convs(model: nn.Module, conv_cfg: dict,
                   keep_full_precision: Optional[Iterable[str]] = None) -> List[str]:
    """Replace plain ``nn.Conv2d`` modules of ``model`` by binary convs, in place.

    Args:
        conv_cfg: binary conv config (``dict(type=..., input_quantizer=..., ...)``).
        keep_full_precision: module-name patterns (fnmatch) to leave in float. ``None`` keeps the
            first conv of the model (its stem), as every binary network does.

    Returns:
        The names of the replaced modules.
    """
    convs = [(name, m) for name, m in model.named_modules() if type(m) is nn.Conv2d]
    if not convs:
        raise ValueError(f'{type(model).__name__} has no nn.Conv2d to binarize')
    if keep_full_precision is None:
        keep_full_precision = [convs[0][0]]
    keep = list(keep_full_precision)
    replaced = []
    for name, conv in convs:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in keep):
            continue
        if conv.padding_mode != 'zeros':
            raise ValueError(f'conv {name!r} uses padding_mode={conv.padding_mode!r}; binary '
                             'convs support zero padding only (keep it in float with '
                             'keep_full_precision)')
        binary = build_binary_conv(conv_cfg, conv.in_channels, conv.out_channels,
                                   conv.kernel_size, stride=conv.stride, padding=conv.padding,
                                   dilation=conv.dilation, groups=conv.groups,
                                   bias=conv.bias is not None)
        binary.weight.data.copy_(conv.weight.data)
        if conv.bias is not None:
            binary.bias.data.copy_(conv.bias.data)
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, binary)
        replaced.append(name)
    return replaced


@register_backbone
class BinaryTimmBackbone(BaseModule):
    """A timm CNN (``features_only``) with its convs binarized.

    Args:
        model_name: any timm model that supports ``features_only=True``.
        method: binary method name (``'bireal'``, ``'xnor'``, ``'xnorpp'``).
        out_indices: timm feature indices to return.
        keep_full_precision: module-name patterns left in float (default: the stem conv only).
        input_quantizer, kernel_quantizer: override the method's binarizers.
        pretrained: forwarded to timm (no download is possible offline; use
            ``pretrained_cfg_overlay=dict(file=...)`` or ``init_cfg`` with a local checkpoint).
        timm_kwargs: further keyword arguments for ``timm.create_model``.
    """

    def __init__(self, model_name: str, method: str = DEFAULT_METHOD,
                 out_indices: Sequence[int] = (1, 2, 3, 4),
                 keep_full_precision: Optional[Sequence[str]] = None,
                 input_quantizer=None, kernel_quantizer=None, in_channels: int = 3,
                 pretrained: bool = False, init_cfg=None, **timm_kwargs):
        super().__init__(init_cfg=init_cfg)
        import timm  # imported here: only this backbone needs it
        self.model = timm.create_model(model_name, features_only=True, pretrained=pretrained,
                                       out_indices=tuple(out_indices), in_chans=in_channels,
                                       **timm_kwargs)
        self.method = method
        conv_cfg = method_conv_cfg(method, input_quantizer, kernel_quantizer)
        self.binarized_layers = binarize_convs(self.model, conv_cfg, keep_full_precision)
        self.out_channels = tuple(self.model.feature_info.channels())
        self.strides = tuple(self.model.feature_info.reduction())

    def forward(self, x):
        return tuple(self.model(x))

    @property
    def binary_convs(self):
        return [m for m in self.modules() if isinstance(m, BinaryConv2d)]
