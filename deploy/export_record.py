"""What an exported model needs besides its graph, read from the config: the test pipeline's
resize, the data preprocessor's normalisation, class names and the segmentation head's
post-processing settings.

``tools/deploy.py`` stores :func:`pipeline_record` as JSON in the ``.onnx`` file's metadata
(key ``runtime_lite.RECORD_KEY``), where ``runtime_lite.Model`` reads it with onnxruntime alone.
"""
from typing import Optional, Sequence

from .runtime_lite import RECORD_KEY  # noqa: F401  (re-exported for writers of the record)

RESIZE_TYPES = ('Resize', 'mmdet.Resize', 'mmseg.Resize')
# Steps that do not change the image the model sees (annotations and their checks, packing,
# image loading in colour: runtime_lite reads colour images as mmcv's LoadImageFromFile does).
NEUTRAL_TYPES = ('LoadImageFromFile', 'LoadAnnotations', 'PackDetInputs', 'PackSegInputs',
                 'CheckSegLabels', 'mmdet.LoadImageFromFile', 'mmdet.LoadAnnotations',
                 'mmdet.PackDetInputs', 'mmseg.LoadAnnotations', 'mmseg.PackSegInputs')


def seg_head_settings(cfg) -> dict:
    """``align_corners`` and ``threshold`` of the decode head (mmseg's ``postprocess_result``)."""
    head = cfg.model.get('decode_head', {})
    head = head[-1] if isinstance(head, (list, tuple)) else head
    return dict(align_corners=bool(head.get('align_corners', False)),
                threshold=float(head.get('threshold', 0.3) or 0.3))


def _replayed_steps(pipeline: Sequence[dict]):
    """``(resize or None, steps runtime_lite cannot replay)``."""
    resize, unsupported = None, []
    for step in pipeline:
        kind = step.get('type')
        if kind in RESIZE_TYPES:
            scale = step.get('scale') or step.get('img_scale')
            if isinstance(scale, int):
                scale = (scale, scale)
            resize = dict(scale=[int(scale[0]), int(scale[1])],
                          keep_ratio=bool(step.get('keep_ratio', False)))
        elif kind not in NEUTRAL_TYPES or step.get('color_type', 'color') != 'color':
            unsupported.append(kind)
    return resize, unsupported


def pipeline_record(cfg, task: str, dataset_meta: Optional[dict] = None) -> dict:
    """JSON-able record of the test-time processing around the graph of ``cfg``'s model.

    ``task`` is ``'detection'`` or ``'segmentation'``; ``dataset_meta`` (a checkpoint's) names
    the classes, else the test dataset's ``metainfo`` does.
    """
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    resize, unsupported = _replayed_steps(dataset.get('pipeline', []))
    preprocessor = cfg.model.get('data_preprocessor', {}) or {}
    mean, std = preprocessor.get('mean'), preprocessor.get('std')
    classes = (dataset_meta or {}).get('classes') or (dataset.get('metainfo') or {}).get('classes')
    record = dict(
        task=task, resize=resize, unsupported_steps=unsupported,
        # mmcv loads BGR and either flag of the preprocessor swaps the channels: RGB then
        rgb=bool(preprocessor.get('bgr_to_rgb', False) or preprocessor.get('rgb_to_bgr', False)),
        mean=None if mean is None else [float(v) for v in mean],
        std=None if std is None else [float(v) for v in std],
        classes=None if classes is None else [str(c) for c in classes])
    if task == 'segmentation':
        record.update(seg_head_settings(cfg))
    return record
