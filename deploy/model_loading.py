"""Build an mmdet/mmseg model from a config and load a checkpoint strictly, for export.

Export must not silently run a half-initialised model: a checkpoint whose keys or shapes do not
fit the config's model (another architecture, another number of classes) is an error that names
the mismatching parameters.
"""
from typing import Optional, Tuple

from torch import nn

from bnn_tasks.checkpoint import (CheckpointMismatchError, check_state_dict,  # noqa: F401
                                  read_checkpoint, state_dict_of)


def init_scope(cfg) -> str:
    """Run the config's ``custom_imports`` and set its default scope; returns the scope."""
    from mmengine.registry import init_default_scope
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    import bnn_tasks  # noqa: F401  (registers the binary backbones)
    scope = cfg.get('default_scope') or 'mmdet'
    init_default_scope(scope)
    return scope


def build_model(cfg) -> nn.Module:
    """The config's model (detector or segmentor), on CPU, in eval mode, not initialised."""
    scope = init_scope(cfg)
    if scope == 'mmseg':
        from mmseg.registry import MODELS
    elif scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        raise ValueError(f'config default_scope must be mmdet or mmseg, got {scope!r}')
    model_cfg = cfg.model.copy()
    # Export never trains: skip pretrained backbone downloads the init_cfg may ask for.
    return MODELS.build(model_cfg).cpu().eval()


def load_checkpoint_strict(model: nn.Module, path: str) -> dict:
    """Load ``path`` into ``model`` after :func:`check_state_dict`; returns its ``meta``."""
    checkpoint = read_checkpoint(path)
    state = state_dict_of(checkpoint)
    check_state_dict(model, state, source=f'checkpoint {path!r}')
    model.load_state_dict(state, strict=False)
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
    if isinstance(meta, dict) and meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    return meta if isinstance(meta, dict) else {}


def default_export_shape(cfg) -> Optional[Tuple[int, int]]:
    """(H, W) the test pipeline's Resize produces, rounded up to the pad divisor.

    For ``keep_ratio=True`` this is the size of an image whose aspect matches the scale; other
    aspect ratios fit inside it only when they are not taller/wider (pass ``--shape`` then).
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
