"""Binary layers: convs that take binarizers declaratively, and the blocks built from them."""
from .binary_conv import BINARY_CONVS, BinaryConv2d, XNORPPConv2d
from .bireal_block import (BinaryBasicBlock, BinaryResidualUnit, build_binary_conv,
                           make_downsample_shortcut)
from .binary_conv_unit import BinaryConvUnit
from .group_net_block import GroupNetBlock
# a function named like the binary_conv submodule would shadow it: conv_cfg_binary_conv
# registers conv_cfg=dict(type='BinaryConv') and dict(type='BinaryConvUnit')
from .conv_registry import CONV_CFG_BUILDERS, conv_cfg_binary_conv, conv_cfg_binary_conv_unit
from .methods import BINARY_METHODS, method_conv_cfg

__all__ = ['BinaryConv2d', 'XNORPPConv2d', 'BinaryResidualUnit', 'BinaryBasicBlock',
           'BinaryConvUnit', 'GroupNetBlock', 'build_binary_conv', 'make_downsample_shortcut',
           'BINARY_CONVS', 'BINARY_METHODS', 'CONV_CFG_BUILDERS', 'method_conv_cfg',
           'conv_cfg_binary_conv', 'conv_cfg_binary_conv_unit']
