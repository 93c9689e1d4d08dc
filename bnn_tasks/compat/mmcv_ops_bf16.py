"""mmcv 2.1.0: the CPU kernels of ``nms`` and ``RoIAlign`` take float32 only, so a Faster R-CNN
trained under bfloat16 autocast (``tools/train.py --amp``) fails in its RPN with
``RuntimeError: expected scalar type Float but found BFloat16`` (the proposals' boxes and scores
come from bfloat16 convolutions).

Fix: both run in float32 when handed a lower-precision tensor: ``NMSop.forward`` casts boxes and
scores (it returns indices, so nothing changes downstream), ``RoIAlign.forward`` casts the
feature map and the RoIs and casts the pooled features back to the map's type (mmdet's RoI
extractor writes them into a tensor of that type; the casts are differentiable). Float32
inputs take the original path untouched.
"""
import functools

import torch

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def _as_float32(tensor):
    return tensor.float() if tensor.dtype in _LOW_PRECISION else tensor


def apply() -> bool:
    """Patch ``NMSop.forward`` and ``RoIAlign.forward`` once; True when in place."""
    from mmcv.ops.nms import NMSop
    from mmcv.ops.roi_align import RoIAlign
    if getattr(RoIAlign.forward, '_bnn_tasks_bf16_fix', False):
        return True
    nms_forward = NMSop.forward  # a staticmethod: plain function on the class

    @functools.wraps(nms_forward)
    def nms_in_float32(ctx, bboxes, scores, *args):
        return nms_forward(ctx, _as_float32(bboxes), _as_float32(scores), *args)

    roi_align_forward = RoIAlign.forward

    @functools.wraps(roi_align_forward)
    def roi_align_in_float32(self, input, rois):
        pooled = roi_align_forward(self, _as_float32(input), _as_float32(rois))
        return pooled.to(input.dtype)  # mmdet writes it into a tensor of the input's type

    roi_align_in_float32._bnn_tasks_bf16_fix = True
    NMSop.forward = staticmethod(nms_in_float32)
    RoIAlign.forward = roi_align_in_float32
    return True
