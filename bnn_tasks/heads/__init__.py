"""Decode heads registered in mmseg's registry (``type='PriorCorrectedFCNHead'``)."""
from .prior_corrected_fcn_head import PriorCorrectedFCNHead

__all__ = ['PriorCorrectedFCNHead']
