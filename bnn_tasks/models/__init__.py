"""Model wrappers registered in the OpenMMLab registries (training recipes, not networks)."""
from .distilling_model import DistillingModel

__all__ = ['DistillingModel']
