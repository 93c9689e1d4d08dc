"""Heads registered in mmseg's / mmdet's registries (``type='PriorCorrectedFCNHead'``,
``'BinaryRPNHead'``, ``'BinaryRetinaHead'``, ``'BinaryFCBBoxHead'``)."""
from .binary_det_heads import BinaryFCBBoxHead, BinaryRetinaHead, BinaryRPNHead
from .prior_corrected_fcn_head import PriorCorrectedFCNHead

__all__ = ['PriorCorrectedFCNHead', 'BinaryRPNHead', 'BinaryRetinaHead', 'BinaryFCBBoxHead']
