"""One counting forward pass for a detector, a segmentor or a bare backbone.

Detectors and segmentors run their ``mode='tensor'`` forward (what mmdet's own get_flops
counts): backbone, neck and heads, without loss or post-processing. A two-stage detector's
RoI head then runs on the proposals its RPN really produced for the input, so its cost
depends on how many survive NMS (reported as the RoI head's input shape).
"""
from typing import Callable, Sequence, Tuple

import torch
from torch import nn


def input_channels(model: nn.Module, default: int = 3) -> int:
    """Channels of the first conv (the image channels the model expects)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return default


def _image_meta(h: int, w: int) -> dict:
    return dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                batch_input_shape=(h, w), scale_factor=(1.0, 1.0))


def model_kind(model: nn.Module) -> str:
    """``'detector'``, ``'segmentor'`` or ``'backbone'`` (anything else called as ``model(x)``)."""
    from mmdet.models.detectors import BaseDetector
    from mmseg.models.segmentors import BaseSegmentor
    if isinstance(model, BaseDetector):
        return 'detector'
    if isinstance(model, BaseSegmentor):
        return 'segmentor'
    return 'backbone'


def counting_forward(model: nn.Module, shape: Sequence[int], seed: int = 0
                     ) -> Tuple[Callable[[], object], Tuple[int, int, int, int]]:
    """``(run, input_shape)``: ``run()`` calls ``model`` once on a seeded N(0, 1) image of
    ``shape`` (H, W), which stands for a normalised input."""
    h, w = (int(v) for v in shape)
    input_shape = (1, input_channels(model), h, w)
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(seed))
    kind = model_kind(model)
    if kind == 'backbone':
        return (lambda: model(x)), input_shape
    if kind == 'detector':
        from mmdet.structures import DetDataSample
        samples = [DetDataSample(metainfo=_image_meta(h, w))]
    else:
        from mmseg.structures import SegDataSample
        samples = [SegDataSample(metainfo=_image_meta(h, w))]
    return (lambda: model(x, samples, mode='tensor')), input_shape


def count_model(model: nn.Module, shape: Sequence[int], source: str = '', seed: int = 0):
    """Cost report of one forward pass of a detector/segmentor/backbone at ``shape`` (H, W)."""
    from .complexity import count_complexity
    run, input_shape = counting_forward(model, shape, seed)
    report = count_complexity(model, run, input_shape, source or type(model).__name__)
    report.notes.insert(0, f'{model_kind(model)} {type(model).__name__}, forward at '
                        f'{input_shape[2]}x{input_shape[3]} (batch 1)')
    return report
