"""Binary convs selectable through mmcv's ``conv_cfg`` (``ConvModule``, ``build_conv_layer``).

``conv_cfg=dict(type='BinaryConv', method='bireal')`` in an FPN, a RetinaNet/SSD head tower or
any other module that builds its convs with ``build_conv_layer`` makes its k x k convs binary.
``type='BinaryConvUnit'`` makes each a :class:`BinaryConvUnit` instead (input norm, binary conv,
output norm, real shortcut): what a neck or head whose features are not normalized needs.
1x1 convs (FPN laterals, channel projections) stay full precision by default: they are cheap,
and BiDet-style binary detectors keep them real-valued. The builders are registered in
mmengine's root ``MODELS``, so mmdet's and mmseg's registries find them too.
"""
from mmengine.registry import MODELS
from torch import nn

from .binary_conv import BINARY_CONVS
from .binary_conv_unit import BinaryConvUnit
from .methods import DEFAULT_METHOD, method_conv_cfg


def _is_pointwise(kernel_size) -> bool:
    sizes = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,)
    return all(int(k) == 1 for k in sizes)


def conv_cfg_binary_conv(in_channels, out_channels, kernel_size, *args,
                         method: str = DEFAULT_METHOD, binarize_pointwise: bool = False,
                         input_quantizer=None, kernel_quantizer=None, **kwargs) -> nn.Module:
    """A binary conv of ``method`` (``bnn_tasks.layers.BINARY_METHODS``); an ``nn.Conv2d`` for
    1x1 kernels unless ``binarize_pointwise``."""
    if _is_pointwise(kernel_size) and not binarize_pointwise:
        return nn.Conv2d(in_channels, out_channels, kernel_size, *args, **kwargs)
    cfg = method_conv_cfg(method, input_quantizer, kernel_quantizer)
    cls = BINARY_CONVS[cfg.pop('type')]
    return cls(in_channels, out_channels, kernel_size, *args, **cfg, **kwargs)


def conv_cfg_binary_conv_unit(in_channels, out_channels, kernel_size, *args, norm_cfg=None,
                              project_shortcut: bool = True, binarize_pointwise: bool = False,
                              bias=True, **kwargs) -> nn.Module:
    """A :class:`BinaryConvUnit` around ``conv_cfg_binary_conv``'s binary conv (same options);
    an ``nn.Conv2d`` for 1x1 kernels unless ``binarize_pointwise``."""
    if _is_pointwise(kernel_size) and not binarize_pointwise:
        return conv_cfg_binary_conv(in_channels, out_channels, kernel_size, *args, bias=bias,
                                    **kwargs)
    # no conv bias: the unit's output norm shifts each channel anyway
    conv = conv_cfg_binary_conv(in_channels, out_channels, kernel_size, *args, bias=False,
                                binarize_pointwise=binarize_pointwise, **kwargs)
    return BinaryConvUnit(conv, norm_cfg=norm_cfg, project_shortcut=project_shortcut)


# The conv_cfg types these builders answer to.
CONV_CFG_BUILDERS = {'BinaryConv': conv_cfg_binary_conv,
                     'BinaryConvUnit': conv_cfg_binary_conv_unit}
for _name, _builder in CONV_CFG_BUILDERS.items():
    MODELS.register_module(name=_name, module=_builder, force=True)
