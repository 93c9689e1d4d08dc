"""From a config to the objects it describes, in the config's OpenMMLab scope (mmdet or mmseg).

Training helpers, analysis tools and export all start here, so a config's ``custom_imports`` and
``default_scope`` are honoured the same way everywhere and a config of another scope is refused
with one message.
"""
import importlib
from typing import Optional, Tuple

from torch import nn

SCOPES = ('mmdet', 'mmseg')


def config_scope(cfg) -> str:
    """``cfg.default_scope`` (mmdet when unset); a ``ValueError`` for any other scope."""
    scope = cfg.get('default_scope') or 'mmdet'
    if scope not in SCOPES:
        raise ValueError(f'config default_scope must be mmdet or mmseg, got {scope!r}')
    return scope


def init_scope(cfg) -> str:
    """Run the config's ``custom_imports`` and make its scope the default; returns the scope."""
    from mmengine.registry import init_default_scope
    scope = config_scope(cfg)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    import bnn_tasks  # noqa: F401  (registers the binary backbones, heads and transforms)
    init_default_scope(scope)
    return scope


def scope_registry(cfg, name: str):
    """The registry ``name`` (``'MODELS'``, ``'DATASETS'``, ``'VISUALIZERS'``...) of the
    config's scope, after :func:`init_scope`."""
    scope = init_scope(cfg)
    importlib.import_module(f'{scope}.models')  # registers the scope's own networks
    return getattr(importlib.import_module(f'{scope}.registry'), name)


def build_model(cfg) -> nn.Module:
    """The config's model (detector or segmentor), on CPU, in eval mode, not initialised
    (nothing downloads the pretrained weights an ``init_cfg`` may name)."""
    return scope_registry(cfg, 'MODELS').build(cfg.model.copy()).cpu().eval()


def build_backbone(cfg) -> nn.Module:
    """``cfg.model.backbone`` alone, initialised by its own ``init_weights``."""
    import copy
    backbone = scope_registry(cfg, 'MODELS').build(copy.deepcopy(cfg.model.backbone))
    backbone.init_weights()
    return backbone


def input_shape_of(cfg) -> Optional[Tuple[int, int]]:
    """(H, W) the test pipeline's Resize produces, rounded up to the pad divisor; None when
    the pipeline does not resize.

    For ``keep_ratio=True`` this is the size of an image whose aspect matches the scale; other
    aspect ratios fit inside it only when they are not taller/wider.
    """
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    scale = None
    for step in pipeline:
        if step.get('type') in ('Resize', 'mmdet.Resize', 'mmseg.Resize'):
            scale = step.get('scale') or step.get('img_scale')
    if scale is None:
        return None
    if isinstance(scale, int):
        scale = (scale, scale)
    w, h = int(scale[0]), int(scale[1])
    preproc = cfg.model.get('data_preprocessor', {}) or {}
    div = int(preproc.get('pad_size_divisor', 1) or 1)
    size = preproc.get('size') or None
    h, w = -(-h // div) * div, -(-w // div) * div
    if size is not None and cfg.get('default_scope') != 'mmseg':
        h, w = max(h, int(size[0])), max(w, int(size[1]))
    return h, w
