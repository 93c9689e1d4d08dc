"""The one place where bnn_tasks models enter the OpenMMLab registries.

``@register_backbone`` puts a class into both ``mmdet.registry.MODELS`` and
``mmseg.registry.MODELS``, so ``type='BiRealResNet'`` works in plain mmdet and mmseg configs
after ``custom_imports=dict(imports=['bnn_tasks'])``.
"""
from mmdet.registry import MODELS as MMDET_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS

REGISTRIES = {'mmdet': MMDET_MODELS, 'mmseg': MMSEG_MODELS}


def register_backbone(cls):
    for registry in REGISTRIES.values():
        # force=True keeps re-imports (e.g. importlib.reload in notebooks) harmless.
        registry.register_module(module=cls, force=True)
    return cls
