"""Binary backbones, registered in mmdet's and mmseg's MODELS (see ``registry.py``)."""
from .bireal import BiRealResNet
from .binary_resnet import BinaryResNetBase
from .group_net import GroupNetResNet
from .timm_binary import BinaryTimmBackbone, binarize_convs
from .xnorpp import XNORPPResNet

__all__ = ['BinaryResNetBase', 'BiRealResNet', 'GroupNetResNet', 'XNORPPResNet',
           'BinaryTimmBackbone', 'binarize_convs']
