"""Binary convs selectable through mmcv's ``conv_cfg`` (``ConvModule``, ``build_conv_layer``).

``conv_cfg=dict(type='BinaryConv', method='bireal')`` in an FPN, a RetinaNet/SSD head tower or
any other module that builds its convs with ``build_conv_layer`` makes its k x k convs binary.
1x1 convs (FPN laterals, channel projections) stay full precision by default: they are cheap,
and BiDet-style binary detectors keep them real-valued. The builder is registered in mmengine's
root ``MODELS``, so mmdet's and mmseg's registries find it too.
"""
from mmengine.registry import MODELS
from torch import nn

from .binary_conv import BinaryConv2d, XNORPPConv2d
from .methods import method_conv_cfg

_CLASSES = {'BinaryConv2d': BinaryConv2d, 'XNORPPConv2d': XNORPPConv2d}


def _is_pointwise(kernel_size) -> bool:
    sizes = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,)
    return all(int(k) == 1 for k in sizes)


def conv_cfg_binary_conv(in_channels, out_channels, kernel_size, *args, method: str = 'bireal',
                         binarize_pointwise: bool = False, input_quantizer=None,
                         kernel_quantizer=None, **kwargs) -> nn.Module:
    """A binary conv of ``method`` (``bnn_tasks.layers.BINARY_METHODS``); an ``nn.Conv2d`` for
    1x1 kernels unless ``binarize_pointwise``."""
    if _is_pointwise(kernel_size) and not binarize_pointwise:
        return nn.Conv2d(in_channels, out_channels, kernel_size, *args, **kwargs)
    cfg = method_conv_cfg(method, input_quantizer, kernel_quantizer)
    cls = _CLASSES[cfg.pop('type')]
    return cls(in_channels, out_channels, kernel_size, *args, **cfg, **kwargs)


MODELS.register_module(name='BinaryConv', module=conv_cfg_binary_conv, force=True)
