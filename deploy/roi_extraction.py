"""RoI features of FPN detectors in the exported graph, as mmdet's ``SingleRoIExtractor``.

Each RoI is assigned to one FPN level (``map_roi_levels``) and pooled there alone (average
RoIAlign). Two exports of the same function:

* ``library_op=False`` (float exports, which must run in plain ONNX Runtime and OpenVINO):
  standard ops. Per level the indices of its RoIs (NonZero), those RoIs (Gather), a RoiAlign on
  them (``half_pixel`` when aligned, ``spatial_scale = 1 / stride``), then one Gather through
  the inverse permutation restores the RoIs' order.
* ``library_op=True`` (bit-packed exports, which load the native library anyway): one
  ``bnn_tasks::MultiLevelRoiAlign`` node (``deploy/OP_CONTRACT.md``), which assigns the levels
  and pools channels-last in one pass; ONNX Runtime's RoiAlign was 30 % of the main job's
  detector.

PyTorch computes both with torchvision's ``roi_align`` (what mmcv's RoIAlign computes).
"""
from typing import Sequence

import torch
import torchvision
from torch import Tensor

from .op_spec import ROI_ALIGN_QUALIFIED_NAME
from .postprocess import concat_levels

__all__ = ['map_roi_levels', 'multilevel_roi_align']


def map_roi_levels(rois: Tensor, num_levels: int, finest_scale: float = 56) -> Tensor:
    """FPN level of each RoI, as mmdet's ``SingleRoIExtractor.map_roi_levels``."""
    scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    levels = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return levels.clamp(min=0, max=num_levels - 1).long()


def _pool_per_level(feats: Sequence[Tensor], rois: Tensor, output_size: int,
                    strides: Sequence[int], sampling_ratio: int, aligned: bool,
                    finest_scale: float) -> Tensor:
    levels = map_roi_levels(rois, len(strides), finest_scale)
    order, pooled = [], []
    for i, (feat, stride) in enumerate(zip(feats, strides)):
        index = torch.nonzero(levels == i).view(-1)
        order.append(index)
        pooled.append(torchvision.ops.roi_align(feat, rois[index], output_size, 1.0 / stride,
                                                sampling_ratio, aligned))
    order, pooled = concat_levels(order), concat_levels(pooled)
    # Every RoI is in exactly one level, so ``order`` is a permutation: scatter its inverse (a
    # short index vector) and gather the pooled rows once, rather than scatter the features
    # into a zero tensor of the same size.
    inverse = torch.zeros_like(order).index_put((order,), torch.arange(order.shape[0]))
    return pooled[inverse]


class RoiGeometry:
    """The non-tensor arguments of the extraction (the tracer takes no dicts or floats)."""

    def __init__(self, output_size: int, strides: Sequence[int], sampling_ratio: int,
                 aligned: bool, finest_scale: float):
        self.output_size = int(output_size)
        self.strides = [int(s) for s in strides]
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)
        self.finest_scale = float(finest_scale)


class MultiLevelRoiAlignFunction(torch.autograd.Function):
    """One ``bnn_tasks::MultiLevelRoiAlign`` node; PyTorch computes the standard-op version."""

    @staticmethod
    def forward(ctx, rois, geometry, *feats):
        return _pool_per_level(feats, rois, geometry.output_size, geometry.strides,
                               geometry.sampling_ratio, geometry.aligned, geometry.finest_scale)

    @staticmethod
    def symbolic(g, rois, geometry, *feats):
        out = g.op(ROI_ALIGN_QUALIFIED_NAME, rois, *feats,
                   output_height_i=geometry.output_size,
                   output_width_i=geometry.output_size,
                   sampling_ratio_i=geometry.sampling_ratio,
                   aligned_i=int(geometry.aligned),
                   spatial_scales_f=[1.0 / s for s in geometry.strides],
                   finest_scale_f=geometry.finest_scale)
        # [R, C, out, out] with R data dependent
        channels = feats[0].type().sizes()[1] if feats[0].type().sizes() else None
        if channels is not None:
            out.setType(feats[0].type().with_sizes(
                [None, channels, geometry.output_size, geometry.output_size]))
        return out


def multilevel_roi_align(feats: Sequence[Tensor], rois: Tensor, output_size: int,
                         strides: Sequence[int], sampling_ratio: int = 0,
                         aligned: bool = True, finest_scale: float = 56,
                         library_op: bool = False) -> Tensor:
    """Pooled features [R, C, output_size, output_size] of ``rois`` [R, 5] (batch index, x1,
    y1, x2, y2 in image pixels), each on its own level of ``feats``; see the module docstring
    for the two exports."""
    if len(feats) != len(strides):
        raise ValueError(f'{len(feats)} feature levels but {len(strides)} strides')
    if library_op:
        geometry = RoiGeometry(output_size, strides, sampling_ratio, aligned, finest_scale)
        return MultiLevelRoiAlignFunction.apply(rois, geometry, *feats)
    return _pool_per_level(feats, rois, output_size, strides, sampling_ratio, aligned,
                           finest_scale)

