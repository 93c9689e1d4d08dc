"""bnn_tasks: 1-bit CNN backbones for OpenMMLab detection and segmentation.

``custom_imports=dict(imports=['bnn_tasks'])`` in an mmdet/mmseg config applies the stack fixes
(``bnn_tasks.compat``), registers the binary backbones and the built-in digits dataset.
"""
from .version import __version__
from . import compat  # noqa: F401  (fixes for known breakages of the pinned stack; first)
from . import backbones, datasets, engine, heads, layers  # noqa: F401  (registers into registries)
from .binarizers import build_binarizer

__all__ = ['__version__', 'backbones', 'layers', 'datasets', 'build_binarizer']
