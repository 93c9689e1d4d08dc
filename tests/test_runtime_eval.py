"""``run_onnx_test``: the config's test set through ONNX Runtime scores like the PyTorch model.

A tiny generated digits set (96 px images resized to 128 px by the test pipeline, so boxes must
be mapped back through ``scale_factor`` and masks resized to the original size) is evaluated
twice with the same dataloader and evaluator config: once with ``model.test_step`` (what
``tools/test.py`` does) and once with the exported file through :func:`run_onnx_test`. Besides
the metrics (equal within 0.1 points), every image's predictions are compared, because an
untrained model's metric alone could agree by accident.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

import bnn_tasks  # noqa: F401
from bnn_tasks.deploy.export import export_model
from bnn_tasks.build import build_model
from bnn_tasks.deploy.runtime import OnnxRuntimeError, build_onnx_model, run_onnx_test
from conftest import digits_overrides, randomize_bn

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SIZE = 128


def _tiny_config(rel, root):
    cfg = Config.fromfile(osp.join(REPO, 'configs', rel))
    cfg.merge_from_dict(digits_overrides(cfg, root, size=SIZE, batch_size=2))
    return cfg


def _pytorch_test(cfg, model):
    """What tools/test.py computes for a PyTorch model: test_step + the test evaluator."""
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    samples = []
    with torch.no_grad():
        for batch in loader:
            out = model.test_step(batch)
            samples += out
            evaluator.process(data_samples=out, data_batch=batch)
    return evaluator.evaluate(len(loader.dataset)), samples


def _onnx_samples(cfg, path):
    from mmengine.registry import MODELS
    from mmengine.runner import Runner
    onnx_model = build_onnx_model(cfg, path)
    pre = MODELS.build(cfg.model.data_preprocessor).eval()
    loader = Runner.build_dataloader(cfg.test_dataloader)
    samples = []
    with torch.no_grad():
        for batch in loader:
            data = pre(batch, False)
            samples += onnx_model.predict(data['inputs'], data['data_samples'])
    return samples


def _export(cfg, model, tmp_path):
    model.cpu().eval()
    path = str(tmp_path / 'model.onnx')
    export_model(model, path, (SIZE, SIZE), 'binary')
    return path


def _assert_metrics_equal(torch_metrics, onnx_metrics, points):
    assert torch_metrics.keys() == onnx_metrics.keys()
    for key, value in torch_metrics.items():
        if isinstance(value, float):
            assert abs(value - onnx_metrics[key]) <= points, (key, value, onnx_metrics[key])


def test_detector_onnx_test_matches_pytorch_test(tiny_digits, tmp_path):
    cfg = _tiny_config('bireal/retinanet_bireal18_fpn_digits.py', tiny_digits)
    cfg.model.test_cfg.score_thr = 0.0  # untrained: keep low scores so there is something to match
    from mmengine.registry import init_default_scope
    torch.manual_seed(0)  # the same random model whatever ran before
    model = build_model(cfg)
    model.init_weights()
    randomize_bn(model)
    model.eval()
    init_default_scope('mmdet')
    torch_metrics, torch_samples = _pytorch_test(cfg, model)
    path = _export(cfg, model, tmp_path)

    onnx_samples = _onnx_samples(cfg, path)
    assert len(onnx_samples) == len(torch_samples) == 4
    for t, o in zip(torch_samples, onnx_samples):
        assert t.metainfo['scale_factor'][0] != 1.0  # the rescale path is exercised
        tp, op = t.pred_instances, o.pred_instances
        k = min(20, len(tp))
        assert k > 0 and len(op) >= k
        np.testing.assert_allclose(op.bboxes[:k].numpy(), tp.bboxes[:k].numpy(), atol=1e-2)
        np.testing.assert_allclose(op.scores[:k].numpy(), tp.scores[:k].numpy(), atol=1e-4)
        np.testing.assert_array_equal(op.labels[:k].numpy(), tp.labels[:k].numpy())

    onnx_metrics = run_onnx_test(cfg, path)
    assert 'coco/bbox_mAP' in onnx_metrics
    _assert_metrics_equal(torch_metrics, onnx_metrics, points=0.001)  # COCO mAP is in [0, 1]


def test_segmentor_onnx_test_matches_pytorch_test(tiny_digits, tmp_path):
    cfg = _tiny_config('bireal/fcn_bireal18-d8_digits.py', tiny_digits)
    from mmengine.registry import init_default_scope
    torch.manual_seed(0)  # the same random model whatever ran before
    model = build_model(cfg)
    model.init_weights()
    randomize_bn(model)
    model.eval()
    init_default_scope('mmseg')
    torch_metrics, torch_samples = _pytorch_test(cfg, model)
    path = _export(cfg, model, tmp_path)
    onnx_samples = _onnx_samples(cfg, path)
    for t, o in zip(torch_samples, onnx_samples):
        assert tuple(o.pred_sem_seg.data.shape[-2:]) == tuple(t.metainfo['ori_shape'][:2])
        agree = (o.pred_sem_seg.data == t.pred_sem_seg.data).float().mean().item()
        assert agree >= 0.999
    onnx_metrics = run_onnx_test(cfg, path)
    assert 'mIoU' in onnx_metrics
    _assert_metrics_equal(torch_metrics, onnx_metrics, points=0.1)  # mmseg reports percent


def test_runner_rejects_images_larger_than_the_export(tiny_digits, tmp_path):
    cfg = _tiny_config('bireal/fcn_bireal18-d8_digits.py', tiny_digits)
    model = build_model(cfg)
    path = str(tmp_path / 'small.onnx')
    export_model(model, path, (64, 64), 'binary')
    with pytest.raises(OnnxRuntimeError, match='--shape'):
        run_onnx_test(cfg, path)


def test_runner_needs_an_onnx_file(tiny_digits):
    cfg = _tiny_config('bireal/fcn_bireal18-d8_digits.py', tiny_digits)
    with pytest.raises(OnnxRuntimeError, match='tools/deploy.py'):
        run_onnx_test(cfg, "model.pth")


def test_tools_test_runs_an_onnx_checkpoint(tiny_digits, tmp_path):
    """The user-facing path: tools/test.py CONFIG model.onnx prints the COCO metrics."""
    import subprocess
    import sys
    from conftest import options_to_cli, tool_env
    rel = 'bireal/retinanet_bireal18_fpn_digits.py'
    cfg = _tiny_config(rel, tiny_digits)
    model = build_model(cfg)
    path = _export(cfg, model, tmp_path)
    opts = digits_overrides(Config.fromfile(osp.join(REPO, 'configs', rel)), tiny_digits,
                            size=SIZE)
    cmd = [sys.executable, osp.join(REPO, 'tools', 'test.py'), osp.join(REPO, 'configs', rel),
           path, '--work-dir', str(tmp_path / 'work'), '--cfg-options', *options_to_cli(opts)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'ONNX Runtime (model.onnx) test' in proc.stdout + proc.stderr
    assert (tmp_path / 'work' / 'test_metrics_onnx.json').exists()


def test_deploy_int8_export_is_scored_by_tools_test(tiny_digits, tmp_path):
    """tools/deploy.py --int8 N: the bit-packed detector with its float ops in int8 (smaller
    than the bit-packed file, binary nodes kept), which tools/test.py then scores."""
    import json
    import subprocess
    import sys

    import onnx

    from bnn_tasks.deploy.op_spec import ROI_ALIGN_OP_TYPE, is_binary_conv
    from conftest import options_to_cli, run_tool_in_process, tool_env
    rel = 'bireal/faster-rcnn_bireal18_fpn_digits.py'
    config = osp.join(REPO, 'configs', rel)
    opts = options_to_cli(digits_overrides(Config.fromfile(config), tiny_digits, size=SIZE))
    model = build_model(_tiny_config(rel, tiny_digits))
    checkpoint = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = tmp_path / 'deploy'
    proc = run_tool_in_process('deploy', [config, checkpoint, '--out', str(out), '--int8', '2',
                                          '--no-verify', '--cfg-options', *opts])
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = 'faster-rcnn_bireal18_fpn_digits'
    report = json.loads((out / f'{name}.json').read_text())
    int8 = report['exports']['int8']
    assert int8['calibration_images'] == 2
    assert int8['weight_bits'] == 7  # the default: free of int16 saturation without VNNI
    assert int8['size_bytes'] < report['exports']['binary']['size_bytes']
    graph = onnx.load(int8['path'])
    assert sum(map(is_binary_conv, graph.graph.node)) == \
        report['exports']['binary']['binary_conv_nodes'] > 0
    assert any(n.op_type == 'DequantizeLinear' for n in graph.graph.node)
    # the RoI op reads the FPN's features through Q/DQ, so the FPN convs run in int8
    producers = {o: n.op_type for n in graph.graph.node for o in n.output}
    (roi,) = [n for n in graph.graph.node if n.op_type == ROI_ALIGN_OP_TYPE]
    assert all(producers[name] == 'DequantizeLinear' for name in roi.input[1:])
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'test.py'), config,
                           int8['path'], '--work-dir', str(tmp_path / 'work'),
                           '--cfg-options', *opts],
                          capture_output=True, text=True, env=tool_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / 'work' / 'test_metrics_onnx.json').exists()


def test_deploy_refuses_a_bad_int8_count(tmp_path, capsys):
    from conftest import load_tool
    deploy_tool = load_tool('deploy')
    with pytest.raises(SystemExit) as exit_info:
        deploy_tool.parse_args(['x.py', 'y.pth', '--out', str(tmp_path), '--int8', '-1'])
    assert exit_info.value.code == 2
    assert '--int8 takes a number of calibration images' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        deploy_tool.parse_args(['x.py', 'y.pth', '--out', str(tmp_path), '--int8-full-range'])
    assert exit_info.value.code == 2
    assert '--int8-full-range applies to the --int8 export' in capsys.readouterr().err
