"""Built-in digits dataset (generation in ``digits``) and data checks.

Importing this is cheap: the generator's heavy imports (cv2, sklearn) happen when it runs.
``CheckSegLabels`` is registered as a pipeline transform in mmseg's registry,
so configs can use ``dict(type='CheckSegLabels', num_classes=...)``.
"""
from .errors import DatasetError
from .transforms import CheckSegLabels

DIGITS_CLASSES = tuple(str(d) for d in range(10))


def _register() -> None:
    try:
        from mmseg.registry import TRANSFORMS
    except ImportError:  # mmseg not installed: the transform stays usable directly
        return
    TRANSFORMS.register_module(name='CheckSegLabels', module=CheckSegLabels, force=True)


_register()

__all__ = ['DatasetError', 'CheckSegLabels', 'DIGITS_CLASSES']
