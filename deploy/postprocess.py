"""Traceable detection post-processing: the pieces of mmdet's test-time code as graph ops.

Every function here runs in PyTorch and exports (TorchScript exporter, opset >= 16) to standard
ONNX ops: TopK, NonMaxSuppression, Gather. Shapes after NMS are data dependent, so no function
converts a tensor size to a Python number. RoI feature extraction is ``roi_extraction``.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .onnx_ops import nms_indices


def delta_xywh_decode(priors: Tensor, deltas: Tensor, means: Sequence[float],
                      stds: Sequence[float], img_hw: Tensor, wh_ratio_clip: float = 16 / 1000,
                      clip_border: bool = True) -> Tensor:
    """mmdet's ``DeltaXYWHBBoxCoder.decode`` (non-legacy) for ``priors``/``deltas`` [..., 4].

    ``img_hw`` [..., 2] = (h, w), broadcastable against the boxes' leading dims, is the valid
    image size inside the padded input (one row per image, or per box), so boxes are clipped
    exactly where mmdet clips them even though the graph input is padded.
    """
    means_t = deltas.new_tensor(list(means))
    stds_t = deltas.new_tensor(list(stds))
    d = deltas * stds_t + means_t
    pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
    pwh = priors[..., 2:] - priors[..., :2]
    max_ratio = abs(math.log(wh_ratio_clip))
    gxy = pxy + pwh * d[..., :2]
    gwh = pwh * d[..., 2:].clamp(min=-max_ratio, max=max_ratio).exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if clip_border:
        wh = torch.cat([img_hw[..., 1:2], img_hw[..., 0:1]], dim=-1)
        boxes = torch.minimum(boxes.clamp(min=0), torch.cat([wh, wh], dim=-1))
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
    """Per image, the top ``k`` of its flat scores [N, L], best first; ``k <= 0`` keeps all
    (sorted).

    The level size L is fixed at the export shape, so ``min(k, L)`` is a constant of the graph.
    """
    n = scores.shape[1]
    k = n if k <= 0 else min(int(k), int(n))
    return scores.topk(k, dim=1)


def invalidate_small_boxes(boxes: Tensor, scores: Tensor, min_size: float,
                           invalid_score: float) -> Tensor:
    """mmdet's ``min_bbox_size`` filter (keep ``w > min_size and h > min_size``) as a score mask.

    Removing rows would make shapes data dependent; a score at or below NMS's score threshold
    removes the box in the NMS node instead.
    """
    if min_size is None or min_size < 0:
        return scores
    wh = boxes[..., 2:] - boxes[..., :2]
    valid = (wh[..., 0] > min_size) & (wh[..., 1] > min_size)
    return torch.where(valid, scores, torch.full_like(scores, invalid_score))


def batched_nms_keep(boxes: Tensor, scores: Tensor, groups: Tensor, iou_thr: float,
                     score_thr: float, max_per_image: int, valid: Optional[Tensor] = None
                     ) -> Tuple[Tensor, Tensor]:
    """mmdet's ``batched_nms`` (NMS within each group) for every image of a batch.

    ``boxes`` [N, M, 4], ``scores`` and ``groups`` [N, M]: one row of candidates per image.
    Groups are kept apart by the coordinate-offset trick (boxes of group g shifted by
    ``g * (max_coordinate + 1)``, the image's own maximum, so an image's result does not depend
    on the others in the batch); images are kept apart by NonMaxSuppression's batch dimension.
    ``valid`` [N, M] (default: all) marks the boxes that belong to the image, for rows that
    also hold other images' boxes (with scores at or below ``score_thr``).
    Returns ``(image [K], index [K])`` into dims 0 and 1, grouped by image, best first within
    an image, at most ``max_per_image`` each (``<= 0``: no cap).
    """
    own = boxes if valid is None else torch.where(valid.unsqueeze(-1), boxes,
                                                  torch.full_like(boxes, -math.inf))
    max_coordinate = own.flatten(1).max(dim=1).values
    offsets = groups.to(boxes.dtype) * (max_coordinate.unsqueeze(1) + 1)
    shifted = boxes + offsets.unsqueeze(-1)
    cap = max_per_image if max_per_image > 0 else 1 << 30
    return nms_indices(shifted, scores, iou_thr, score_thr, cap)


def gather_rows(values: Tensor, image: Tensor, index: Tensor) -> Tensor:
    """``values[image, index]`` for ``values`` [N, M, ...] (as a flat Gather in the graph)."""
    flat = values.reshape((-1,) + tuple(values.shape[2:]))
    return flat[image * values.shape[1] + index]


def concat_levels(tensors: List[Tensor], dim: int = 0) -> Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=dim)
