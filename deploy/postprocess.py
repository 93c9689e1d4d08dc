"""Traceable detection post-processing: the pieces of mmdet's test-time code as graph ops.

Every function here runs in PyTorch and exports (TorchScript exporter, opset >= 16) to standard
ONNX ops: TopK, NonMaxSuppression, Gather. Shapes after NMS are data dependent, so no function
converts a tensor size to a Python number. RoI feature extraction is ``roi_extraction``.
"""
import math
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from .onnx_ops import nms_indices


def delta_xywh_decode(priors: Tensor, deltas: Tensor, means: Sequence[float],
                      stds: Sequence[float], img_hw: Tensor, wh_ratio_clip: float = 16 / 1000,
                      clip_border: bool = True) -> Tensor:
    """mmdet's ``DeltaXYWHBBoxCoder.decode`` (non-legacy) for ``priors``/``deltas`` [N, 4].

    ``img_hw`` is a float tensor ``[h, w]`` (the valid image size inside the padded input), so
    boxes are clipped exactly where mmdet clips them even though the graph input is padded.
    """
    means_t = deltas.new_tensor(list(means)).view(1, 4)
    stds_t = deltas.new_tensor(list(stds)).view(1, 4)
    d = deltas * stds_t + means_t
    pxy = (priors[:, :2] + priors[:, 2:]) * 0.5
    pwh = priors[:, 2:] - priors[:, :2]
    max_ratio = abs(math.log(wh_ratio_clip))
    gxy = pxy + pwh * d[:, :2]
    gwh = pwh * d[:, 2:].clamp(min=-max_ratio, max=max_ratio).exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if clip_border:
        upper = torch.stack([img_hw[1], img_hw[0], img_hw[1], img_hw[0]]).view(1, 4)
        boxes = torch.minimum(boxes.clamp(min=0), upper)
    return boxes


def decode_with(coder, priors: Tensor, deltas: Tensor, img_hw: Tensor) -> Tensor:
    """Decode with an mmdet bbox coder; only ``DeltaXYWHBBoxCoder`` has a graph version."""
    name = type(coder).__name__
    if name != 'DeltaXYWHBBoxCoder' or getattr(coder, 'add_ctr_clamp', False):
        raise NotImplementedError(f'ONNX export supports DeltaXYWHBBoxCoder (without '
                                  f'add_ctr_clamp) only, got {name}')
    return delta_xywh_decode(priors, deltas, coder.means, coder.stds, img_hw,
                             clip_border=coder.clip_border)


def level_topk(scores: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """Top ``k`` entries of a flat score vector, best first; ``k <= 0`` keeps all (sorted).

    The level size is fixed at the export shape, so ``min(k, n)`` is a constant of the graph.
    """
    n = scores.shape[0]
    k = n if k <= 0 else min(int(k), int(n))
    return scores.topk(k)


def invalidate_small_boxes(boxes: Tensor, scores: Tensor, min_size: float,
                           invalid_score: float) -> Tensor:
    """mmdet's ``min_bbox_size`` filter (keep ``w > min_size and h > min_size``) as a score mask.

    Removing rows would make shapes data dependent; a score at or below NMS's score threshold
    removes the box in the NMS node instead.
    """
    if min_size is None or min_size < 0:
        return scores
    wh = boxes[:, 2:] - boxes[:, :2]
    valid = (wh[:, 0] > min_size) & (wh[:, 1] > min_size)
    return torch.where(valid, scores, torch.full_like(scores, invalid_score))


def batched_nms_keep(boxes: Tensor, scores: Tensor, groups: Tensor, iou_thr: float,
                     score_thr: float, max_output: int) -> Tensor:
    """mmdet's ``batched_nms`` (NMS within each group) via the coordinate-offset trick.

    Boxes of different groups are shifted apart by ``group * (max_coordinate + 1)`` so a single
    class-agnostic NMS never lets them suppress each other. Returns kept indices, best first,
    at most ``max_output`` (``<= 0``: no cap).
    """
    max_coordinate = boxes.max()
    offsets = groups.to(boxes.dtype) * (max_coordinate + 1)
    shifted = boxes + offsets[:, None]
    cap = max_output if max_output > 0 else 1 << 30
    return nms_indices(shifted, scores, iou_thr, score_thr, cap)


def concat_levels(tensors: List[Tensor]) -> Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=0)
