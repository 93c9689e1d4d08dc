"""Multi-level RoI extraction in the exported graph == mmdet's ``SingleRoIExtractor``.

The export assigns each RoI to one FPN level (mmdet's ``map_roi_levels``) and runs RoiAlign on
that level's RoIs only, then scatters the pooled features back into the RoIs' order. Random RoIs
are drawn at sizes that map to every level, in shuffled order, and once with a level that gets
no RoI; the ONNX Runtime features must equal the extractor's (mmcv RoIAlign, aligned=True).
"""
import numpy as np
import onnx
import pytest
import torch
from torch import nn

import bnn_tasks  # noqa: F401
from bnn_tasks.deploy.op_spec import IR_VERSION, ONNX_OPSET
from bnn_tasks.deploy.postprocess import map_roi_levels, multilevel_roi_align
from bnn_tasks.deploy.runtime import create_session

STRIDES = (4, 8, 16, 32)
IMAGE = 256
CHANNELS = 8
FINEST_SCALE = 56


class RoiFeatures(nn.Module):
    def __init__(self, output_size, sampling_ratio):
        super().__init__()
        self.output_size, self.sampling_ratio = output_size, sampling_ratio

    def forward(self, f0, f1, f2, f3, rois):
        return multilevel_roi_align((f0, f1, f2, f3), rois, self.output_size, STRIDES,
                                    self.sampling_ratio, True, FINEST_SCALE)


def _export(module, inputs, path, names):
    """The module as ONNX with the RoI count dynamic (a detector's RoI count is data dependent)."""
    torch.onnx.export(module, inputs, path, dynamo=False, opset_version=ONNX_OPSET,
                      input_names=names, output_names=['roi_feats'],
                      dynamic_axes={'rois': {0: 'rois'}, 'roi_feats': {0: 'rois'}})
    model = onnx.load(path)
    model.ir_version = min(model.ir_version, IR_VERSION)
    onnx.save(model, path)


def _extractor(output_size, sampling_ratio):
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    return SingleRoIExtractor(
        roi_layer=dict(type='RoIAlign', output_size=output_size, sampling_ratio=sampling_ratio),
        out_channels=CHANNELS, featmap_strides=list(STRIDES), finest_scale=FINEST_SCALE).eval()


def _rois(gen, sides):
    """One RoI per side length (sqrt(area) picks the level), at random places and aspects."""
    sides = torch.as_tensor(sides, dtype=torch.float32)
    aspect = torch.empty(len(sides)).uniform_(0.5, 2.0, generator=gen)
    w, h = sides * aspect.sqrt(), sides / aspect.sqrt()
    x1 = torch.rand(len(sides), generator=gen) * (IMAGE - w).clamp(min=1)
    y1 = torch.rand(len(sides), generator=gen) * (IMAGE - h).clamp(min=1)
    boxes = torch.stack([x1, y1, x1 + w, y1 + h], dim=1)
    return torch.cat([torch.zeros(len(sides), 1), boxes], dim=1)


def _feats(gen):
    return [torch.randn(1, CHANNELS, IMAGE // s, IMAGE // s, generator=gen) for s in STRIDES]


# sqrt(area) in [0, 112) -> level 0, [112, 224) -> 1, [224, 448) -> 2, >= 448 -> 3
ALL_LEVELS = [8, 20, 50, 100, 111, 113, 150, 200, 230, 250, 256, 60, 30, 180, 240, 470, 500]
NO_LEVEL_1 = [10, 40, 90, 230, 250, 30, 500, 70]


@pytest.mark.parametrize('output_size,sampling_ratio', [(7, 2), (7, 0), (4, 1)])
def test_exported_roi_features_equal_single_roi_extractor(tmp_path, output_size, sampling_ratio):
    gen = torch.Generator().manual_seed(output_size * 10 + sampling_ratio)
    feats = _feats(gen)
    module = RoiFeatures(output_size, sampling_ratio)
    rois = _rois(gen, ALL_LEVELS)
    names = [f'f{i}' for i in range(4)] + ['rois']
    path = str(tmp_path / 'roi.onnx')
    _export(module, (*feats, rois), path, names)
    # one RoiAlign per level, and the graph gathers/scatters instead of masking every level
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops.count('RoiAlign') == len(STRIDES) and 'ScatterND' in ops, ops
    session = create_session(path)
    extractor = _extractor(output_size, sampling_ratio)
    for sides in (ALL_LEVELS, NO_LEVEL_1, [300]):
        rois = _rois(gen, sides)
        rois = rois[torch.randperm(len(rois), generator=gen)]  # levels interleaved
        levels = map_roi_levels(rois, len(STRIDES), FINEST_SCALE)
        assert (levels.bincount(minlength=4) > 0).sum() == len(set(levels.tolist()))
        if sides is ALL_LEVELS:
            assert set(levels.tolist()) == {0, 1, 2, 3}
        with torch.no_grad():
            expected = extractor(tuple(feats), rois).numpy()
        feeds = {n: t.numpy() for n, t in zip(names, (*feats, rois))}
        (actual,) = session.run(None, feeds)
        assert actual.shape == expected.shape == (len(sides), CHANNELS, output_size, output_size)
        np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)
        # PyTorch's side of the export (the reference of compare_outputs) agrees as well
        np.testing.assert_allclose(module(*feats, rois).numpy(), expected, atol=1e-5, rtol=1e-5)


def test_roi_level_assignment_follows_mmdet():
    extractor = _extractor(7, 2)
    gen = torch.Generator().manual_seed(1)
    rois = _rois(gen, torch.empty(200).uniform_(1, 600, generator=gen))
    np.testing.assert_array_equal(map_roi_levels(rois, 4, FINEST_SCALE).numpy(),
                                  extractor.map_roi_levels(rois, 4).numpy())
