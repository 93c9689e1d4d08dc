"""PyTorch functions that export as exactly one ONNX node each (TorchScript exporter).

Each ``torch.autograd.Function`` here computes in PyTorch what the ONNX node computes in ONNX
Runtime, and its ``symbolic`` emits that node. The exporter (``torch.onnx.export(...,
dynamo=False)``) calls ``symbolic`` instead of tracing ``forward``, so the graph holds one node
where PyTorch would have recorded many ops.
"""
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor

from bnn_tasks.binarizers import sign

from .op_spec import QUALIFIED_NAME


def _const(g, value: Tensor):
    return g.op('Constant', value_t=value)


class StaticConvArgs:
    """The non-graph arguments of one binary conv: +-1 float weights and geometry.

    Anything passed to ``Function.apply`` as a tensor becomes an ONNX initializer; the float
    signs are only needed to compute PyTorch's reference output while tracing, so they travel
    inside a plain Python object (the tracer also accepts no dicts as arguments).
    """

    def __init__(self, sign_weight: Tensor, geometry: dict):
        self.sign_weight = sign_weight
        self.geometry = geometry


def apply_output_transform(dot: Tensor, post_scale: Tensor, post_bias: Tensor,
                           row_scale: Tensor = None, col_scale: Tensor = None) -> Tensor:
    """``((dot * post_scale) * row_scale) * col_scale + post_bias``: the contract's float32
    evaluation order, so PyTorch's reference and the kernel agree bit for bit."""
    y = dot * post_scale.view(1, -1, 1, 1)
    if row_scale is not None:
        y = y * row_scale.view(1, 1, -1, 1)
        y = y * col_scale.view(1, 1, 1, -1)
    return y + post_bias.view(1, -1, 1, 1)


class BinaryConv2dFunction(torch.autograd.Function):
    """``bnn_tasks::BinaryConv2d`` (``deploy/OP_CONTRACT.md``) without the residual input.

    ``spatial_scales`` is empty or ``(row_scale, col_scale)`` (the tracer takes no ``None``).

    The residual input is attached later by the graph pass that folds a following Add.
    """

    @staticmethod
    def forward(ctx, x, w_packed, post_scale, post_bias, static, *spatial_scales):
        geometry = static.geometry
        stride, padding, dilation = geometry['strides'], geometry['pads'], geometry['dilations']
        pt, pl, pb, pr = padding
        x_sign = F.pad(sign(x), (pl, pr, pt, pb))  # zero padding of the sign tensor
        y = F.conv2d(x_sign, static.sign_weight.to(x.dtype), None, stride, 0, dilation)
        return apply_output_transform(y, post_scale, post_bias, *spatial_scales)

    @staticmethod
    def symbolic(g, x, w_packed, post_scale, post_bias, static, *spatial_scales):
        geometry = static.geometry
        inputs = [x, w_packed, post_scale, post_bias, *spatial_scales]
        out = g.op(QUALIFIED_NAME, *inputs,
                   in_channels_i=geometry['in_channels'],
                   out_channels_i=geometry['out_channels'],
                   kernel_shape_i=list(geometry['kernel_shape']),
                   strides_i=list(geometry['strides']),
                   pads_i=list(geometry['pads']),
                   dilations_i=list(geometry['dilations']),
                   weight_layout_s=geometry['weight_layout'])
        out_shape = geometry.get('output_shape')
        if out_shape is not None:
            out.setType(x.type().with_sizes(list(out_shape)))
        return out


class NonMaxSuppressionFunction(torch.autograd.Function):
    """Single-class NMS per image as one ONNX ``NonMaxSuppression`` node.

    ``boxes`` [N, M, 4], ``scores`` [N, M]. Returns the kept ``(image [K], index [K])``,
    grouped by image and sorted by decreasing score within one (ONNX Runtime's order: batch,
    then class, then score; what mmcv's ``nms`` returns for one image). ``max_output`` caps the
    boxes kept per image; boxes with ``score <= score_thr`` are dropped (mmdet's
    ``scores > score_thr``).
    """

    @staticmethod
    def forward(ctx, boxes, scores, iou_thr: float, score_thr: float, max_output: int):
        images, indices = [], []
        for image, (image_boxes, image_scores) in enumerate(zip(boxes, scores)):
            candidates = torch.nonzero(image_scores > score_thr).view(-1)
            keep = torchvision.ops.nms(image_boxes[candidates], image_scores[candidates],
                                       iou_thr)
            indices.append(candidates[keep[:max_output]])
            images.append(torch.full_like(indices[-1], image))
        if not indices:
            empty = torch.zeros(0, dtype=torch.int64, device=boxes.device)
            return empty, empty.clone()
        return torch.cat(images), torch.cat(indices)

    @staticmethod
    def symbolic(g, boxes, scores, iou_thr, score_thr, max_output):
        scores3 = g.op('Unsqueeze', scores, _const(g, torch.tensor([1])))   # [N, 1, M]
        selected = g.op('NonMaxSuppression', boxes, scores3,
                        _const(g, torch.tensor([max_output], dtype=torch.int64)),
                        _const(g, torch.tensor([iou_thr], dtype=torch.float32)),
                        _const(g, torch.tensor([score_thr], dtype=torch.float32)),
                        center_point_box_i=0)                               # [K, 3]

        def column(i):
            return g.op('Gather', selected, _const(g, torch.tensor(i, dtype=torch.int64)),
                        axis_i=1)                                           # [K]
        return column(0), column(2)


def nms_indices(boxes: Tensor, scores: Tensor, iou_thr: float, score_thr: float,
                max_output: int):
    """``(image, index)`` of the boxes [N, M, 4] kept by NMS per image, best first within an
    image (exports as one ONNX NonMaxSuppression)."""
    return NonMaxSuppressionFunction.apply(boxes, scores, float(iou_thr), float(score_thr),
                                           int(max_output))
