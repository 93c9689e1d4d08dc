"""End-to-end ONNX export of detectors (Faster R-CNN, RetinaNet, SSD) and an FCN segmentor with
binary backbones: ONNX Runtime output == mmdet/mmseg ``model.predict`` on the same input, plus
the deploy CLI and checkpoint errors.

Detections are compared against the PyTorch model's own ``predict`` (mmdet's post-processing),
not only against the export wrapper: top-k boxes within 1e-2 px, scores within 1e-4, same labels.
Inputs are seeded 128 px (SSD 256) noise, the one of 8 seeds whose binary conv inputs stay
farthest from 0 (required >= 2e-6, several float32 ulps of the O(1..10) activations), so no
sign flips between ONNX Runtime and PyTorch (see test_export_backbones.py). Larger inputs have
more activations, so their best margin is smaller than the backbone tests' 1e-5.
"""
import json
import os.path as osp

import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config
from conftest import load_tool, randomize_bn

import bnn_tasks  # noqa: F401
from bnn_tasks.deploy.export import export_model
from bnn_tasks.deploy.export_layers import binary_input_margin
from bnn_tasks.build import build_model
from bnn_tasks.checkpoint import CheckpointMismatchError, load_checkpoint_strict
from bnn_tasks.deploy.runtime import create_session

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOP_K = 20
BOX_TOL = 1e-2   # pixels
SCORE_TOL = 1e-4


SIGN_MARGIN = 2e-6


def input_with_margin(model, size, tries=8, min_margin=SIGN_MARGIN, margin_of=None,
                      first_enough=False):
    """The seeded noise image whose binarizers see nothing closer to 0 (of ``tries``); it must
    keep ``min_margin``. ``margin_of(img)`` measures it (default: ``model``'s backbone).
    ``size``: a side or ``(height, width)``. ``first_enough``: the first seed that keeps
    ``min_margin`` instead of the best (fewer forward passes where ``tries`` is large)."""
    if margin_of is None:
        def margin_of(img):
            return binary_input_margin(model.backbone, (img,))
    shape = (size, size) if isinstance(size, int) else tuple(size)
    best, best_margin = None, -1.0
    for seed in range(tries):
        img = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))
        margin = margin_of(img)
        if margin > best_margin:
            best, best_margin = img, margin
        if first_enough and best_margin >= min_margin:
            break
    assert best_margin >= min_margin, (f'best sign margin of {tries} seeds {best_margin:.3g} '
                                       f'< {min_margin}')
    return best


def _config(rel):
    return Config.fromfile(osp.join(REPO, 'configs', rel))


def _detector(rel, init_weights=True):
    torch.manual_seed(0)  # the same random model whatever ran before
    cfg = _config(rel)
    model = build_model(cfg)
    if init_weights:
        model.init_weights()
        # untrained heads put every score near the prior; keep all so top-k is not empty
        if hasattr(model, 'bbox_head'):
            model.bbox_head.test_cfg.score_thr = 0.0
    return model.eval()


def _mmdet_predict(model, img):
    from mmdet.structures import DetDataSample
    h, w = img.shape[-2:]
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                         batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        return model.predict(img, [sample], rescale=False)[0].pred_instances


def assert_top_k_match_predict(dets, labels, model, img):
    """The graph's top-k detections equal mmdet's ``predict`` (boxes, scores, labels)."""
    pred = _mmdet_predict(model, img)
    k = min(TOP_K, len(pred))
    assert k > 0 and dets.shape[0] >= k
    np.testing.assert_allclose(dets[:k, :4], pred.bboxes[:k].numpy(), atol=BOX_TOL, rtol=0)
    np.testing.assert_allclose(dets[:k, 4], pred.scores[:k].numpy(), atol=SCORE_TOL, rtol=0)
    np.testing.assert_array_equal(labels[:k], pred.labels[:k].numpy())


DETECTORS = [
    ('bireal/faster-rcnn_bireal18_fpn_digits.py', 128, False),
    ('bireal/retinanet_bireal18_fpn_digits.py', 128, True),
    ('xnorpp/ssd256_xnorpp18_digits.py', 256, True),
]


@pytest.mark.parametrize('rel,size,init', DETECTORS, ids=[d[0].split('/')[1] for d in DETECTORS])
def test_detector_export_matches_mmdet_predict(tmp_path, rel, size, init):
    model = _detector(rel, init)
    img = input_with_margin(model, size)
    result = export_model(model, str(tmp_path / 'det.onnx'), (size, size), 'binary',
                          example_input=img)
    assert result.num_binary_nodes == len(result.binary_layers) > 0
    dets, labels, batch_indices = create_session(result.path).run(None, result.feeds())
    assert dets.ndim == 2 and dets.shape[1] == 5 and labels.shape == (dets.shape[0],)
    assert labels.dtype == batch_indices.dtype == np.int64 and not batch_indices.any()

    assert_top_k_match_predict(dets, labels, model, img)
    assert np.all(np.diff(dets[:, 4]) <= 1e-6), 'detections must come best first'
    assert (dets[:, :4] >= 0).all() and (dets[:, [0, 2]] <= size).all()
    assert_batch_gives_single_results(result.path, result.feeds()['input'], size)

    if 'faster-rcnn' in rel:  # size: the bit-packed detector against its float twin
        float_twin = export_model(model, str(tmp_path / 'float.onnx'), (size, size), 'float',
                                  example_input=img)
        ratio = float_twin.size / result.size
        # FPN, RPN and the 2-fc RoI head stay float: the detector shrinks less than its
        # backbone (> 10x, see test_export_backbones.py)
        print(f'Faster R-CNN Bi-Real-18: float {float_twin.size / 2**20:.1f} MiB, bit-packed '
              f'{result.size / 2**20:.1f} MiB, ratio {ratio:.1f}x')
        assert ratio > 2
        # the float graph pools RoIs with ONNX RoiAlign (batch indices from the proposals)
        assert_batch_gives_single_results(float_twin.path, float_twin.feeds()['input'], size)


def assert_batch_gives_single_results(path, first_image, size):
    """N = 2, 3 images in one run give each image's N = 1 detections, grouped by image."""
    session = create_session(path)
    images = np.concatenate([first_image, np.random.default_rng(1).standard_normal(
        (2, 3, size, size)).astype(np.float32)])
    # each image its own valid size: boxes are clipped per image
    valid = np.array([[size, size], [size - 8, size], [size, size - 24]], np.float32)
    singles = [session.run(None, {'input': images[i:i + 1], 'img_shape': valid[i:i + 1]})
               for i in range(3)]
    assert all(len(s[0]) for s in singles)
    for n in (2, 3):
        dets, labels, batch_indices = session.run(None, {'input': images[:n],
                                                         'img_shape': valid[:n]})
        assert np.all(np.diff(batch_indices) >= 0), 'rows must be grouped by image'
        for i in range(n):
            mine = batch_indices == i
            np.testing.assert_array_equal(dets[mine], singles[i][0])
            np.testing.assert_array_equal(labels[mine], singles[i][1])


def test_fcn_export_matches_mmseg_predict(tmp_path):
    from mmseg.structures import SegDataSample
    cfg = _config('group_net/fcn_groupnet18-d8_digits.py')
    cfg.model.backbone.num_bases = 2
    cfg.model.backbone.bpac_rates = None  # default BPAC rates (2, 4) and (4, 8): distinct per base
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    model.eval()
    img = input_with_margin(model, 64)
    result = export_model(model, str(tmp_path / 'fcn.onnx'), (64, 64), 'binary',
                          example_input=img)
    logits, labels = create_session(result.path).run(None, result.feeds())
    sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         pad_shape=(64, 64)))
    with torch.no_grad():
        pred = model.predict(img, [sample])[0]
    np.testing.assert_allclose(logits[0], pred.seg_logits.data.numpy(), atol=1e-4, rtol=1e-4)
    assert labels.shape == (1, 64, 64)
    assert (labels[0] == pred.pred_sem_seg.data[0].numpy()).mean() >= 0.999
    # dynamic batch: N = 1, 2, 3 give each image's N = 1 result
    session = create_session(result.path)
    images = np.concatenate([result.feeds()['input'], np.random.default_rng(0).standard_normal(
        (2, 3, 64, 64)).astype(np.float32)])
    singles = [session.run(None, {'input': images[i:i + 1]}) for i in range(3)]
    for n in (1, 2, 3):
        batched = session.run(None, {'input': images[:n]})
        for i in range(n):
            np.testing.assert_array_equal(batched[0][i:i + 1], singles[i][0])
            np.testing.assert_array_equal(batched[1][i:i + 1], singles[i][1])


def test_detector_batch_dimension_is_dynamic_unless_fixed(tmp_path):
    model = _detector('bireal/retinanet_bireal18_fpn_digits.py', init_weights=False)
    for dynamic, first_dim in ((True, 'batch'), (False, 1)):
        path = export_model(model, str(tmp_path / 'det.onnx'), (64, 64), 'binary',
                            dynamic_batch=dynamic).path
        inputs = onnx.load(path).graph.input
        dims = [i.type.tensor_type.shape.dim[0] for i in inputs]
        assert [i.name for i in inputs] == ['input', 'img_shape']
        assert all((d.dim_param or d.dim_value) == first_dim for d in dims)
    session = create_session(path)  # fixed: a second image is refused by ONNX Runtime
    with pytest.raises(Exception, match='input'):
        session.run(None, {'input': np.zeros((2, 3, 64, 64), np.float32),
                           'img_shape': np.full((2, 2), 64, np.float32)})


def test_deploy_cli_exports_verifies_and_writes_json(tmp_path):
    deploy_tool = load_tool('deploy')
    cfg_path = osp.join(REPO, 'configs', 'bireal', 'fcn_bireal18-d8_digits.py')
    torch.manual_seed(0)
    model = build_model(Config.fromfile(cfg_path))
    # trained-like BN statistics: freshly initialised BNs (mean 0, bias 0) leave exact zeros
    # at binary conv inputs, where the float twin's fused Conv*scale rounds to +-1e-8 and
    # flips signs (see docs/deploy.md, "Numerics")
    randomize_bn(model)
    ckpt = tmp_path / 'fcn.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    report = deploy_tool.main([cfg_path, str(ckpt), '--out', str(tmp_path / 'out'),
                               '--shape', '64', '64'])
    with open(tmp_path / 'out' / 'fcn_bireal18-d8_digits.json') as f:
        saved = json.load(f)
    assert saved['float_to_binary_size_ratio'] == report['float_to_binary_size_ratio'] > 1
    for mode in ('binary', 'float'):
        entry = saved['exports'][mode]
        assert osp.getsize(entry['path']) == entry['size_bytes']
        assert entry['verify']['seg_logits']['max_abs_diff'] < 1e-3
        assert entry['verify']['seg_logits']['fraction_close'] == 1.0
    assert saved['exports']['binary']['binary_conv_nodes'] > 0
    # the test pipeline around the graph travels in the file, for deploy/runtime_lite.py
    from bnn_tasks.deploy.runtime_lite import RECORD_KEY
    props = {p.key: p.value for p in onnx.load(saved['exports']['binary']['path'],
                                               load_external_data=False).metadata_props}
    record = json.loads(props[RECORD_KEY])
    assert record == saved['pipeline'] and record['task'] == 'segmentation'
    assert record['resize'] == dict(scale=[256, 256], keep_ratio=True)
    assert record['rgb'] and len(record['mean']) == 3 and record['unsupported_steps'] == []
    assert saved['exports']['float']['binary_conv_nodes'] == 0


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    other = build_model(_config('baselines/retinanet_r18_fpn_digits.py'))
    ckpt = tmp_path / 'retinanet_fp.pth'
    torch.save({'state_dict': other.state_dict()}, ckpt)
    model = build_model(_config('bireal/faster-rcnn_bireal18_fpn_digits.py'))
    with pytest.raises(CheckpointMismatchError, match='another architecture') as err:
        load_checkpoint_strict(model, str(ckpt))
    message = str(err.value)
    assert 'missing from it' in message and 'unexpected' in message, message
