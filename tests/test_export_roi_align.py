"""Multi-level RoI extraction in the exported graph == mmdet's ``SingleRoIExtractor``.

Both exports (``deploy/roi_extraction.py``): standard ops (each RoI assigned to one FPN level,
RoiAlign on that level's RoIs only, pooled rows gathered back into the RoIs' order) and the
library's single ``bnn_tasks::MultiLevelRoiAlign`` node. Random RoIs are drawn at sizes that map
to every level, in shuffled order, and once with a level that gets no RoI; the ONNX Runtime
features must equal the extractor's (mmcv RoIAlign, aligned=True). The library op is also
checked on several images, RoIs crossing the border, ``aligned=False``, and bad input.
"""
import re

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import bnn_tasks  # noqa: F401
from bnn_tasks.deploy.op_spec import (DOMAIN, IR_VERSION, ONNX_OPSET, OP_VERSION,
                                      ROI_ALIGN_OP_TYPE)
from bnn_tasks.deploy.roi_extraction import map_roi_levels, multilevel_roi_align
from bnn_tasks.deploy.runtime import create_session

STRIDES = (4, 8, 16, 32)
IMAGE = 256
CHANNELS = 8
FINEST_SCALE = 56


class RoiFeatures(nn.Module):
    def __init__(self, output_size, sampling_ratio, library_op=False, aligned=True):
        super().__init__()
        self.output_size, self.sampling_ratio = output_size, sampling_ratio
        self.library_op, self.aligned = library_op, aligned

    def forward(self, f0, f1, f2, f3, rois):
        return multilevel_roi_align((f0, f1, f2, f3), rois, self.output_size, STRIDES,
                                    self.sampling_ratio, self.aligned, FINEST_SCALE,
                                    self.library_op)


def _export(module, inputs, path, names):
    """The module as ONNX with the RoI count dynamic (a detector's RoI count is data dependent)."""
    torch.onnx.export(module, inputs, path, dynamo=False, opset_version=ONNX_OPSET,
                      input_names=names, output_names=['roi_feats'],
                      dynamic_axes={'rois': {0: 'rois'}, 'roi_feats': {0: 'rois'}},
                      custom_opsets={DOMAIN: OP_VERSION} if module.library_op else None)
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


@pytest.mark.parametrize('library_op', [False, True], ids=['standard_ops', 'library_op'])
@pytest.mark.parametrize('output_size,sampling_ratio', [(7, 2), (7, 0), (4, 1)])
def test_exported_roi_features_equal_single_roi_extractor(tmp_path, output_size, sampling_ratio,
                                                          library_op):
    gen = torch.Generator().manual_seed(output_size * 10 + sampling_ratio)
    feats = _feats(gen)
    module = RoiFeatures(output_size, sampling_ratio, library_op)
    rois = _rois(gen, ALL_LEVELS)
    names = [f'f{i}' for i in range(4)] + ['rois']
    path = str(tmp_path / 'roi.onnx')
    _export(module, (*feats, rois), path, names)
    ops = [n.op_type for n in onnx.load(path).graph.node]
    if library_op:  # the whole extraction is one node
        assert ops == [ROI_ALIGN_OP_TYPE], ops
    else:  # one RoiAlign per level, gathered back instead of masking every level
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


def _library_session(tmp_path, module, feats, rois):
    names = [f'f{i}' for i in range(4)] + ['rois']
    path = str(tmp_path / 'roi_op.onnx')
    _export(module, (*feats, rois), path, names)
    return create_session(path), names


@pytest.mark.parametrize('aligned', [True, False])
def test_library_op_on_several_images_and_rois_crossing_the_border(tmp_path, aligned):
    """Batch indices pick the image; RoIs partly or wholly outside the map and RoIs smaller
    than a pixel pool what torchvision's roi_align pools."""
    gen = torch.Generator().manual_seed(7)
    feats = [torch.cat([f, torch.randn(f.shape, generator=gen)]) for f in _feats(gen)]
    module = RoiFeatures(7, 0, library_op=True, aligned=aligned)
    rois = _rois(gen, ALL_LEVELS)
    rois[::2, 0] = 1.0  # every other RoI on the second image
    edge = torch.tensor([[1, -30., -20., 40., 50.], [0, 200., 230., 300., 290.],
                         [1, -90., -90., -10., -20.], [0, 100., 100., 100.4, 100.2],
                         [1, 0., 0., 256., 256.], [0, 250., 5., 250., 60.]])
    rois = torch.cat([rois, edge])
    session, names = _library_session(tmp_path, module, feats, rois)
    (actual,) = session.run(None, {n: t.numpy() for n, t in zip(names, (*feats, rois))})
    expected = RoiFeatures(7, 0, library_op=False, aligned=aligned)(*feats, rois).numpy()
    assert np.abs(expected[-6:]).sum() > 0  # the edge cases pool something
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)
    empty = rois[:0]
    (none,) = session.run(None, {n: t.numpy() for n, t in zip(names, (*feats, empty))})
    assert none.shape == (0, CHANNELS, 7, 7)


def _op_model(attrs, num_feats=4):
    from onnx import TensorProto, helper
    feats = [helper.make_tensor_value_info(f'f{i}', TensorProto.FLOAT, None)
             for i in range(num_feats)]
    rois = helper.make_tensor_value_info('rois', TensorProto.FLOAT, None)
    out = helper.make_tensor_value_info('y', TensorProto.FLOAT, None)
    node = helper.make_node(ROI_ALIGN_OP_TYPE, ['rois'] + [f.name for f in feats], ['y'],
                            name='roi_node', domain=DOMAIN, **attrs)
    graph = helper.make_graph([node], 'g', [rois] + feats, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', ONNX_OPSET),
                                                    helper.make_opsetid(DOMAIN, OP_VERSION)])
    model.ir_version = IR_VERSION
    return model


GOOD_ATTRS = dict(output_height=7, output_width=7, sampling_ratio=2, aligned=1,
                  spatial_scales=[1 / s for s in STRIDES], finest_scale=56.0)


@pytest.mark.parametrize('attrs,message', [
    (dict(output_height=0), "'output_height' must be in [1"),
    (dict(aligned=2), "'aligned' must be in [0, 1]"),
    (dict(sampling_ratio=-1), "'sampling_ratio' must be in [0"),
    (dict(finest_scale=0.0), "'finest_scale' must be a positive number"),
    (dict(spatial_scales=[0.25, -1.0, 0.1, 0.1]), "'spatial_scales' must be positive"),
    (dict(spatial_scales=None), "attribute 'spatial_scales'"),
])
def test_library_op_rejects_bad_attributes_naming_them(attrs, message):
    merged = {k: v for k, v in {**GOOD_ATTRS, **attrs}.items() if v is not None}
    with pytest.raises(Exception, match=re.escape(message)) as err:
        create_session(_op_model(merged))
    assert 'roi_node' in str(err.value)


def test_library_op_rejects_bad_inputs_naming_them():
    gen = torch.Generator().manual_seed(3)
    feats = {f'f{i}': f.numpy() for i, f in enumerate(_feats(gen))}
    rois = _rois(gen, [20, 150]).numpy()
    session = create_session(_op_model(GOOD_ATTRS))
    (ok,) = session.run(None, {**feats, 'rois': rois})
    assert ok.shape == (2, CHANNELS, 7, 7)
    bad_batch = rois.copy()
    bad_batch[1, 0] = 1.0  # one image only
    cases = [
        ({**feats, 'rois': bad_batch}, 'rois[1, 0] (batch index) is 1'),
        ({**feats, 'rois': rois[:, :4]}, "input 'rois' must have shape [R, 5]"),
        ({**feats, 'f2': feats['f2'][:, :3], 'rois': rois}, "input 'features_2' has shape"),
        ({**feats, 'f1': feats['f1'][0], 'rois': rois}, "input 'features_1' must be [N, C, H, W]"),
    ]
    for feeds, message in cases:
        with pytest.raises(Exception, match=re.escape(message)):
            session.run(None, feeds)
    three_levels = create_session(_op_model(GOOD_ATTRS, num_feats=3))
    with pytest.raises(Exception, match=re.escape("got 3 feature inputs but attribute "
                                                  "'spatial_scales' has 4 values")):
        three_levels.run(None, {'f0': feats['f0'], 'f1': feats['f1'], 'f2': feats['f2'],
                                'rois': rois})
