"""tools/analysis_tools: cost counting (FLOPs, BOPs, OPs, storage) against hand-computed numbers,
the ONNX counter against the PyTorch one, log analysis and dataset browsing on the tiny set.

Hand counts: a conv producing C_out x H_o x W_o outputs from C_in / groups x k x k inputs does
C_out H_o W_o C_in k^2 MACs; binary when both its input and weight binarizers output +-1.
OPs = BOPs / 64 + FLOPs; storage = binary weights / 8 + 4 x float parameters (bytes).
"""
import glob
import json
import os.path as osp
import subprocess

import numpy as np
import pytest
import torch
from conftest import (PYTHON, REPO, digits_overrides, options_to_cli, run_tool_in_process,
                      load_tool, tool_env)
from mmengine.config import Config
from torch import nn

import bnn_tasks  # noqa: F401  (registers the backbones)
from bnn_tasks.analysis import count_module, format_table
from bnn_tasks.analysis.logs import LogError, cal_train_time, load_json_log, plot_curves
from bnn_tasks.layers import BinaryBasicBlock, BinaryConv2d, make_downsample_shortcut
from mmdet.registry import MODELS

DET = osp.join(REPO, 'configs', 'bireal', 'faster-rcnn_bireal18_fpn_digits.py')
SEG = osp.join(REPO, 'configs', 'bireal', 'fcn_bireal18-d8_digits.py')
BN = dict(type='BN', requires_grad=True)

# Bi-Real-18 at 224 x 224, by hand (see docs/model_zoo.md)
STEM_MACS = 64 * 112 * 112 * 3 * 7 * 7                          # 118,013,952
STAGE_MACS = (4 * 64 * 56 * 56 * 64 * 9,                         # stage 1: four 64->64 convs
              128 * 28 * 28 * (64 + 3 * 128) * 9,               # stage 2: 64->128, 3x 128->128
              256 * 14 * 14 * (128 + 3 * 256) * 9,
              512 * 7 * 7 * (256 + 3 * 512) * 9)
SHORTCUT_MACS = 3 * 128 * 28 * 28 * 64                           # 1x1 after AvgPool, x3 equal
BIREAL18_BOPS = sum(STAGE_MACS)                                  # 1,676,279,808
BIREAL18_FLOPS = STEM_MACS + SHORTCUT_MACS                       # 137,281,536


def run_cli(args, subprocess_run=False):
    """``python tools/analysis_tools/X.py ARGS``: in this process, or (one case per tool, for
    the ``__main__`` path and its exit code) as a real subprocess."""
    if subprocess_run:
        return subprocess.run([PYTHON] + args, capture_output=True, text=True, env=tool_env(),
                              cwd=REPO, timeout=600)
    return run_tool_in_process(args[0][len('tools/'):-len('.py')], args[1:])


# ------------------------------------------------------------------- counts by hand
def test_single_binary_conv():
    conv = BinaryConv2d(16, 32, 3, padding=1)
    total = count_module(conv, (1, 16, 10, 10)).total
    assert total.binary_macs == 32 * 10 * 10 * 16 * 9 == 460_800
    assert total.float_macs == 0
    assert total.ops == 460_800 / 64
    assert (total.binary_params, total.float_params) == (32 * 16 * 9, 0)
    assert total.storage_bytes == 32 * 16 * 9 / 8


def test_single_float_conv_with_bias_and_stride():
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    total = count_module(conv, (1, 3, 9, 9)).total          # output 5 x 5
    assert total.float_macs == 8 * 5 * 5 * 3 * 9 == 5400
    assert total.binary_macs == 0 and total.ops == 5400
    assert (total.float_params, total.binary_params) == (8 * 27 + 8, 0)
    assert total.storage_bytes == 4 * (8 * 27 + 8)


def test_binary_conv_counts_by_what_its_binarizers_do():
    """Float-stage binarizers (two-stage recipe) make a float conv; sign weights with real
    activations make 1-bit weights but float MACs."""
    shape = (1, 8, 6, 6)
    macs = 8 * 6 * 6 * 8 * 9
    fp = count_module(BinaryConv2d(8, 8, 3, padding=1, input_quantizer='hardtanh',
                                   kernel_quantizer='identity'), shape).total
    assert (fp.float_macs, fp.binary_macs, fp.float_params, fp.binary_params) == (
        macs, 0, 8 * 8 * 9, 0)
    bwn = count_module(BinaryConv2d(8, 8, 3, padding=1, input_quantizer='identity'),
                       shape).total
    assert (bwn.float_macs, bwn.binary_macs, bwn.float_params, bwn.binary_params) == (
        macs, 0, 0, 8 * 8 * 9)


def test_bireal_block_with_downsampling_shortcut():
    block = BinaryBasicBlock(16, 32, stride=2, norm_cfg=BN,
                             shortcut=make_downsample_shortcut(16, 32, 2, BN))
    report = count_module(block, (1, 16, 8, 8))              # outputs 4 x 4
    total = report.total
    assert total.binary_macs == 32 * 4 * 4 * 16 * 9 + 32 * 4 * 4 * 32 * 9 == 221_184
    assert total.float_macs == 32 * 4 * 4 * 16 == 8192      # 1x1 conv after the AvgPool
    assert total.binary_params == 32 * 16 * 9 + 32 * 32 * 9
    # shortcut conv + shortcut BN + the two units' BNs (2 parameters per channel)
    assert total.float_params == 32 * 16 + 2 * 32 + 2 * (2 * 32)
    rows = {r.name: r for r in report.rows}
    assert rows['unit1.conv'].cost.binary_macs == 73_728
    assert rows['unit1.shortcut.1'].kind == 'Conv2d'


def test_bireal18_stem_and_whole_backbone_at_224():
    model = MODELS.build(dict(type='BiRealResNet', depth=18)).eval()
    report = count_module(model, (1, 3, 224, 224))
    rows = {r.name: r.cost for r in report.rows}
    assert rows['conv1'].float_macs == STEM_MACS == 118_013_952
    assert rows['conv1'].float_params == 64 * 3 * 49 and rows['bn1'].float_params == 128
    total = report.total
    assert total.binary_macs == BIREAL18_BOPS == 1_676_279_808
    assert total.float_macs == BIREAL18_FLOPS == 137_281_536
    assert total.ops == BIREAL18_BOPS / 64 + BIREAL18_FLOPS == 163_473_408   # paper: 1.63e8
    # binary: every 3x3 conv but none of the stem / shortcuts
    assert total.binary_params == sum(m.weight.numel() for m in model.modules()
                                      if isinstance(m, BinaryConv2d)) == 10_985_472
    assert not report.uncounted
    groups = {g.name: g.cost for g in report.grouped(1)}
    assert sum(g.ops for g in groups.values()) == total.ops
    table = format_table(report.grouped(1), total)
    assert 'layer4' in table and table.splitlines()[-1].startswith('total')
    json.dumps(report.to_dict(depth=1))  # serialisable


def test_shared_head_counts_every_call():
    """A module called once per pyramid level (shared heads) is counted per call."""
    conv = nn.Conv2d(4, 4, 1, bias=False)
    from bnn_tasks.analysis import count_complexity
    x1, x2 = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)
    report = count_complexity(conv, lambda: (conv(x1), conv(x2)))
    assert report.rows[0].calls == 2
    assert report.total.float_macs == 4 * 4 * (64 + 16)
    assert report.total.float_params == 16  # parameters once


# ------------------------------------------------------------------- ONNX vs PyTorch
def test_onnx_counter_agrees_with_torch_counter(tmp_path):
    from bnn_tasks.deploy.export import export_model
    from bnn_tasks.deploy.onnx_complexity import count_onnx
    model = MODELS.build(dict(type='BiRealResNet', depth=18, stem_channels=16,
                              base_channels=16)).eval()
    torch_total = count_module(model, (1, 3, 64, 64)).total
    path = str(tmp_path / 'bireal.onnx')
    export_model(model, path, (64, 64))
    report = count_onnx(path)
    onnx_total = report.total
    assert not report.uncounted
    assert onnx_total.binary_macs == torch_total.binary_macs > 0
    assert onnx_total.float_macs == torch_total.float_macs > 0
    assert onnx_total.binary_params == torch_total.binary_params
    assert sum(r.kind == 'bnn_tasks::BinaryConv2d' for r in report.rows) == 16
    # The exporter folds the BN after each float conv (stem, 3 shortcuts) into a conv bias:
    # C values stored instead of 2C parameters; the binary convs' BNs fold into their 2C post-ops
    folded_channels = 16 + 32 + 64 + 128
    assert onnx_total.float_params == torch_total.float_params - folded_channels


def test_get_flops_cli_on_a_config_and_an_onnx_file(tmp_path):
    out = tmp_path / 'flops.json'
    run = run_cli(['tools/analysis_tools/get_flops.py', DET, '--backbone-only', '--shape', '224',
                   '--json', str(out)])
    assert run.returncode == 0, run.stderr
    assert 'OPs' in run.stdout and 'layer1' in run.stdout
    total = json.loads(out.read_text())['total']
    assert (total['bops'], total['flops']) == (BIREAL18_BOPS, BIREAL18_FLOPS)

    det = run_cli(['tools/analysis_tools/get_flops.py', DET, '--shape', '64', '64', '--json',
                   str(tmp_path / 'det.json'), '--depth', '1'])
    assert det.returncode == 0, det.stderr
    groups = {g['name']: g for g in json.loads((tmp_path / 'det.json').read_text())['groups']}
    assert groups['backbone']['bops'] > 0 and groups['neck']['bops'] == 0
    assert groups['roi_head']['flops'] > 0 and groups['rpn_head']['flops'] > 0

    missing = run_cli(['tools/analysis_tools/get_flops.py', 'configs/nope.py'],
                      subprocess_run=True)
    assert missing.returncode == 2 and missing.stderr.strip().startswith('error:')


def test_get_flops_cli_on_onnx(tmp_path):
    from bnn_tasks.deploy.export import export_model
    model = MODELS.build(dict(type='BiRealResNet', depth=18, base_channels=16,
                              stem_channels=16)).eval()
    path = str(tmp_path / 'b.onnx')
    export_model(model, path, (32, 32))
    run = run_cli(['tools/analysis_tools/get_flops.py', path, '--json',
                   str(tmp_path / 'o.json')])
    assert run.returncode == 0, run.stderr
    total = json.loads((tmp_path / 'o.json').read_text())['total']
    assert total['bops'] == count_module(model, (1, 3, 32, 32)).total.binary_macs
    wrong = run_cli(['tools/analysis_tools/get_flops.py', path, '--shape', '64'])
    assert wrong.returncode == 2 and 'export the model again' in wrong.stderr


# ------------------------------------------------------------------- logs
@pytest.fixture(scope='module')
def train_log(tiny_digits, tmp_path_factory):
    """mmengine's JSON log of a 4-iteration run on the tiny set (logged every iteration,
    validated at iteration 2 and 4)."""
    work = str(tmp_path_factory.mktemp('logs'))
    opts = digits_overrides(Config.fromfile(DET), tiny_digits)
    opts.update({'default_hooks.logger.interval': 1, 'train_cfg.max_iters': 4,
                 'train_cfg.val_interval': 2, 'default_hooks.checkpoint.interval': 100})
    from bnn_tasks.cli import build_runner, load_config
    build_runner(load_config(DET, opts, work_dir=work)).train()
    logs = [p for p in glob.glob(osp.join(work, '*', 'vis_data', '*.json'))
            if not p.endswith('scalars.json')]
    assert len(logs) == 1
    return logs[0]


def test_log_is_split_into_train_and_val_records(train_log):
    run = load_json_log(train_log)
    assert [r['iter'] for r in run.train] == [1, 2, 3, 4]
    assert [r['step'] for r in run.val] == [2, 4]
    xs, ys, key = run.series('bbox_mAP')                     # suffix of coco/bbox_mAP
    assert key == 'coco/bbox_mAP' and xs == [2.0, 4.0]
    with pytest.raises(LogError, match='no key'):
        run.series('nope')
    timing = cal_train_time(run)
    assert timing.windows == 3 and timing.last_iteration == 4 and timing.mean > 0


def test_plot_curve_and_cal_train_time_cli(train_log, tmp_path):
    out = tmp_path / 'curves.png'
    run = run_cli(['tools/analysis_tools/analyze_logs.py', 'plot_curve', train_log, '--keys',
                   'loss', 'loss_cls', '--out', str(out)])
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b'\x89PNG'
    timing = run_cli(['tools/analysis_tools/analyze_logs.py', 'cal_train_time', train_log])
    assert timing.returncode == 0, timing.stderr
    assert 'average iter time' in timing.stdout
    bad = run_cli(['tools/analysis_tools/analyze_logs.py', 'plot_curve', train_log, '--keys',
                   'nope', '--out', str(tmp_path / 'x.png')], subprocess_run=True)
    assert bad.returncode == 2 and 'no key' in bad.stderr


def test_plot_two_logs_with_metrics(train_log, tmp_path):
    out = str(tmp_path / 'map.png')
    points = plot_curves([load_json_log(train_log)] * 2, ['pascal_voc/mAP'], out,
                         legend=['a', 'b'])
    assert points == {'a': 2, 'b': 2} and osp.getsize(out) > 1000


def test_malformed_log_line_is_named(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text('{"loss": 1.0, "iter": 1, "step": 1}\nnot json\n')
    with pytest.raises(LogError, match='line 2'):
        load_json_log(str(path))


# ------------------------------------------------------------------- browse_dataset
def test_browse_dataset_detection_cli(tiny_digits, tmp_path):
    opts = digits_overrides(Config.fromfile(DET), tiny_digits)
    out = tmp_path / 'browse'
    run = run_cli(['tools/analysis_tools/browse_dataset.py', DET, '--output-dir', str(out),
                   '--max-images', '3', '--cfg-options'] + options_to_cli(opts))
    assert run.returncode == 0, run.stderr
    images = sorted(out.glob('*.jpg'))
    assert len(images) == 3 and all(p.stat().st_size > 500 for p in images)


def test_browse_dataset_segmentation_draws_masks(tiny_digits, tmp_path):
    """Where the ground truth says class c, the drawn pixels are nearer c's palette colour than
    the pipeline's image was (any blending of the mask does that, in the right place only).

    Pooled over every digit pixel of four samples: the written JPEG blurs colour across thin
    strokes and the visualizer writes class names over small masks, so one small digit alone
    can move either way (measured: a 7-pixel mask drawn 13 levels farther, 0.5x on average)."""
    import cv2

    from bnn_tasks.analysis.browse import (browse_dataset, build_train_dataset,
                                           build_visualizer, draw_sample, image_of)
    from bnn_tasks.cli import load_config
    cfg = load_config(SEG, digits_overrides(Config.fromfile(SEG), tiny_digits))
    written = browse_dataset(cfg, str(tmp_path / 'all'), max_images=2)
    assert len(written) == 2 and all(osp.getsize(p) > 500 for p in written)

    dataset = build_train_dataset(cfg)
    visualizer = build_visualizer(cfg, dataset.metainfo)
    palette = np.array(dataset.metainfo['palette'], dtype=float)
    before, after = [], []
    for index in range(4):
        item = dataset[index % len(dataset)]
        raw = image_of(item['inputs']).astype(float)
        drawn = cv2.imread(draw_sample(visualizer, item, str(tmp_path / 'drawn'), index))
        drawn = drawn[..., ::-1].astype(float)
        assert drawn.shape == raw.shape
        labels = item['data_samples'].gt_sem_seg.data[0].numpy()
        for c in np.unique(labels):
            if 0 < c < len(palette):
                where = labels == c
                before.append(np.abs(raw[where] - palette[c]).sum(axis=1))
                after.append(np.abs(drawn[where] - palette[c]).sum(axis=1))
    assert before, 'the samples hold no digit pixels'
    before, after = np.concatenate(before).mean(), np.concatenate(after).mean()
    assert after < 0.8 * before, (before, after)


def test_browse_dataset_missing_data_is_named(tmp_path):
    run = run_cli(['tools/analysis_tools/browse_dataset.py', DET, '--output-dir',
                   str(tmp_path), '--cfg-options',
                   f'train_dataloader.dataset.data_root={tmp_path}/none/'], subprocess_run=True)
    assert run.returncode == 2 and run.stderr.startswith('error:')


# ------------------------------------------------------------------- binary input statistics
def test_binary_input_stats_count_inputs_beyond_each_binarizers_gradient_bound():
    from bnn_tasks.analysis.binary_inputs import binary_input_stats
    model = nn.Sequential(BinaryConv2d(1, 1, 1, input_quantizer='approx_sign'),
                          BinaryConv2d(1, 1, 1, input_quantizer=dict(type='ste_sign', clip=2.5)),
                          BinaryConv2d(1, 1, 1, input_quantizer='identity'))
    x = torch.tensor([-3.0, -1.5, -0.5, 0.0, 0.5, 2.0, 4.0, 1.0]).view(1, 1, 2, 4)
    # each layer's binarizer is fed x itself, so the numbers are checkable by hand
    stats = binary_input_stats(model, lambda: [conv.input_quantizer(x) for conv in model])
    assert [s.layer for s in stats] == ['0', '1', '2']
    assert [s.binarizer for s in stats] == ['ApproxSign', 'SteSign', 'Identity']
    assert stats[0].gradient_free == 4 / 8   # |x| > 1: -3, -1.5, 2, 4
    assert stats[1].gradient_free == 2 / 8   # |x| > 2.5: -3, 4
    assert stats[2].gradient_free == 0       # the identity passes every gradient
    assert stats[0].positive == 5 / 8        # sign(0) = +1
    assert stats[0].std == pytest.approx(x.double().std(unbiased=False).item())
    assert stats[0].shape == (1, 1, 2, 4) and stats[0].elements == 8
    with pytest.raises(ValueError, match='no binary layer'):
        binary_input_stats(nn.Conv2d(1, 1, 1), lambda: None)


def test_binary_input_stats_cli_covers_every_binary_conv_of_an_fcn(tiny_digits, tmp_path):
    opts = digits_overrides(Config.fromfile(SEG), tiny_digits)
    out = tmp_path / 'stats.json'
    run = run_cli(['tools/analysis_tools/binary_input_stats.py', SEG, '--num-images', '2',
                   '--json', str(out), '--cfg-options'] + options_to_cli(opts))
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    layers = report['layers']
    assert report['images'] == 2 and len(layers) == 16  # Bi-Real-18: 16 binary 3x3 convs
    assert all(layer['layer'].startswith('backbone.layer') for layer in layers)
    assert all(0 <= layer['gradient_free'] <= 1 and 0 < layer['positive'] < 1
               and layer['std'] > 0 for layer in layers)
    assert '| backbone.layer4.1.unit2.conv | ApproxSign |' in run.stdout


def test_binary_input_stats_cli_names_a_missing_checkpoint(tmp_path):
    run = run_cli(['tools/analysis_tools/binary_input_stats.py', SEG,
                   str(tmp_path / 'none.pth')], subprocess_run=True)
    assert run.returncode == 2 and 'none.pth' in run.stderr, run.stderr


# ------------------------------------------------------------------- training-step cost
FCN_FLOAT = osp.join(REPO, 'configs', 'baselines', 'fcn_r18-d8_digits.py')
FCN_GROUPNET_K2 = osp.join(REPO, 'configs', 'group_net', 'fcn_groupnet18-k2-d8_digits.py')


def test_round_robin_times_every_step_in_turns():
    from bnn_tasks.analysis.step_cost import format_costs, time_round_robin
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ('a', 'b')}
    costs = time_round_robin(steps, {'a': 2, 'b': 4}, rounds=3, steps_per_round=2, warmup=1)
    # one warm-up step each, then turns of two steps each
    assert calls == ['a', 'b'] + ['a', 'a', 'b', 'b'] * 3
    assert [c.name for c in costs] == ['a', 'b'] and all(len(c.cpu_samples) == 3 for c in costs)
    assert [c.batch_size for c in costs] == [2, 4]
    assert format_costs(costs).splitlines()[2].startswith('| a | 2 |')
    with pytest.raises(ValueError, match='rounds'):
        time_round_robin(steps, {'a': 2, 'b': 4}, rounds=0)


def test_train_step_cost_cli_times_float_twin_and_group_net_float_stage(tiny_digits, tmp_path):
    opts = digits_overrides(Config.fromfile(FCN_FLOAT), tiny_digits)
    out = tmp_path / 'cost.json'
    run = run_cli(['tools/analysis_tools/train_step_cost.py', FCN_FLOAT, FCN_GROUPNET_K2,
                   '--float-stage', '--rounds', '1', '--steps', '1', '--json', str(out),
                   '--cfg-options'] + options_to_cli(opts))
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    names = [c['name'] for c in report['costs']]
    assert names == ['fcn_r18-d8_digits', 'fcn_groupnet18-k2-d8_digits (float stage)']
    assert all(c['cpu_seconds'] > 0 and c['batch_size'] == 2 for c in report['costs'])
    assert '| x first row |' in run.stdout

    tool = load_tool('analysis_tools/train_step_cost')
    args = tool.parse_args([FCN_GROUPNET_K2, '--float-stage'])
    backbone = tool.load_config(FCN_GROUPNET_K2, args)[0].model.backbone
    assert backbone.num_bases == 2 and backbone.kernel_quantizer == 'identity'
    assert 'kernel_quantizer' not in tool.load_config(FCN_GROUPNET_K2, tool.parse_args(
        [FCN_GROUPNET_K2]))[0].model.backbone


def test_train_step_cost_times_each_config_also_with_bf16_autocast(monkeypatch):
    from bnn_tasks.engine import mixed_precision
    tool = load_tool('analysis_tools/train_step_cost')
    cfg = Config.fromfile(FCN_FLOAT)
    monkeypatch.setattr(mixed_precision, 'has_native_bf16', lambda: True)
    (fp32, name), (bf16, label) = tool.precision_variants(cfg, 'fcn', FCN_FLOAT, amp=True)
    assert (name, label) == ('fcn', 'fcn, bf16 autocast')
    assert fp32.optim_wrapper.type == 'OptimWrapper'
    assert bf16.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert tool.precision_variants(cfg, 'fcn', FCN_FLOAT, amp=False) == [(cfg, 'fcn')]
    monkeypatch.setattr(mixed_precision, 'has_native_bf16', lambda: False)
    with pytest.raises(tool.ToolError, match='fcn_r18-d8_digits.py: --amp on a CPU needs'):
        tool.precision_variants(cfg, 'fcn', FCN_FLOAT, amp=True)


def test_train_step_cost_times_each_config_also_in_the_binarization_warmup():
    from bnn_tasks.binarizers import GradualBinarizer
    from bnn_tasks.layers import BinaryConv2d
    tool = load_tool('analysis_tools/train_step_cost')
    cfg = Config.fromfile(FCN_GROUPNET_K2)
    variants = tool.warmup_variants([(cfg, 'gn')], 0.3)
    assert [(label, prepare is None) for _, label, prepare in variants] == [
        ('gn', True), ('gn, binarization warm-up at 0.3', False)]
    model = nn.Sequential(BinaryConv2d(3, 4, 3))
    variants[1][2](model)
    assert isinstance(model[0].input_quantizer, GradualBinarizer)
    assert model[0].input_quantizer.progress == 0.3
    with pytest.raises(ValueError, match='no binary conv'):
        variants[1][2](nn.Sequential(nn.Conv2d(3, 4, 3)))
    assert tool.warmup_variants([(cfg, 'gn')], None) == [(cfg, 'gn', None)]
    with pytest.raises(tool.ToolError, match=r'\[0, 1\)'):
        tool.warmup_variants([(cfg, 'gn')], 1.0)


def test_train_step_cost_cli_names_a_missing_config(tmp_path):
    run = run_cli(['tools/analysis_tools/train_step_cost.py', str(tmp_path / 'none.py')],
                  subprocess_run=True)
    assert run.returncode == 2 and 'none.py' in run.stderr, run.stderr


# ------------------------------------------------------------------- model zoo cells


def test_model_zoo_cell_tells_recorded_runs_of_one_config_apart(tmp_path):
    from bnn_tasks.analysis.model_zoo import _runs_cell, load_measured
    config = 'configs/bireal/faster-rcnn_bireal18_fpn_digits.py'
    teacher = 'configs/baselines/faster-rcnn_r18_fpn_digits.py'
    runs = [
        dict(config=config, metrics={'pascal_voc/mAP': 0.328}, train_minutes=8),
        dict(config=config, metrics={'pascal_voc/mAP': 0.837}, train_minutes=23,
             first_stage=dict(minutes=15), recipe=dict(two_stage=True, distill=None)),
        dict(config=config, metrics={'pascal_voc/mAP': 0.789}, train_minutes=23,
             first_stage=dict(minutes=16),
             recipe=dict(two_stage=True, distill=dict(teacher_config=teacher))),
        dict(config=config, metrics={}, train_minutes=5),  # not scored: no cell
        # the recipe's own split says nothing; another split is named
        dict(config=config, metrics={'pascal_voc/mAP': 0.8}, train_minutes=23,
             first_stage=dict(minutes=15),
             recipe=dict(two_stage=True, distill=None, first_stage_fraction=0.4)),
        dict(config=config, metrics={'pascal_voc/mAP': 0.85}, train_minutes=16,
             first_stage=dict(minutes=23),
             recipe=dict(two_stage=True, distill=None, first_stage_fraction=0.6)),
        dict(config=config, metrics={'pascal_voc/mAP': 0.6}, train_minutes=24,
             first_stage=dict(minutes=16),
             recipe=dict(two_stage=True, distill=None, first_stage_fraction=0.4,
                         float_stage_activations='binary')),
        dict(config=config, metrics={'pascal_voc/mAP': 0.7}, train_minutes=24, amp=True,
             first_stage=dict(minutes=16),
             recipe=dict(two_stage=True, distill=None, first_stage_fraction=0.4)),
        dict(config=config, metrics={'pascal_voc/mAP': 0.5}, train_minutes=40, amp=True,
             cpu='AMD EPYC (2 cores)'),  # recorded before the generation was: nothing to add
        dict(config=config, metrics={'pascal_voc/mAP': 0.9}, train_minutes=40, amp=True,
             cpu='AMD EPYC (Zen 5; AVX-512 BF16 VPOPCNTDQ; 2 cores)'),
    ]
    (tmp_path / 'recipe').mkdir()
    (tmp_path / 'recipe' / 'results.json').write_text(json.dumps(runs))
    measured = load_measured(str(tmp_path))
    assert [run.training for run in measured[config]] == [
        'one stage', 'two-stage', 'two-stage, distilled from faster-rcnn_r18_fpn_digits',
        'two-stage', 'two-stage, 60 % float stage', 'two-stage, binary-activation float stage',
        'two-stage, bf16 autocast', 'one stage, bf16 autocast', 'one stage, bf16 autocast, Zen 5']
    assert _runs_cell(measured[config], 'pascal_voc/mAP') == (
        '0.328 (8 min, one stage); 0.837 (38 min, two-stage); '
        '0.789 (39 min, two-stage, distilled from faster-rcnn_r18_fpn_digits); '
        '0.800 (38 min, two-stage); 0.850 (39 min, two-stage, 60 % float stage); '
        '0.600 (40 min, two-stage, binary-activation float stage); '
        '0.700 (40 min, two-stage, bf16 autocast); 0.500 (40 min, one stage, bf16 autocast); '
        '0.900 (40 min, one stage, bf16 autocast, Zen 5)')


# ------------------------------------------------------------------- dense linear probe
FCN_FLOAT_PRETRAINED = osp.join(REPO, 'configs', 'baselines', 'fcn_r18-d8_digits_pretrained.py')


def test_cell_labels_take_each_cells_centre():
    from bnn_tasks.analysis.dense_probe import cell_labels
    mask = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 255, 255], [3, 3, 255, 255]])
    assert cell_labels(mask, (2, 2)).tolist() == [[1, 2], [3, 255]]


def test_cell_features_keep_foreground_cells_of_every_level():
    from bnn_tasks.analysis.dense_probe import cell_features

    class TwoLevels(nn.Module):  # the image itself, and its 2x average-pooled map
        def forward(self, x):
            return [x, nn.functional.avg_pool2d(x, 2)]

    image = torch.arange(16.0).reshape(1, 4, 4).repeat(3, 1, 1)
    mask = torch.tensor([[0, 0, 5, 5], [0, 0, 5, 5], [0, 255, 7, 7], [0, 255, 7, 7]])
    full, pooled = cell_features(TwoLevels(), [(image, mask)], levels=(0, 1))
    # level 0: the 8 pixels labelled 5 or 7 (background 0 and ignore 255 left out)
    assert full[1].tolist() == [5, 5, 5, 5, 7, 7, 7, 7]
    assert full[0][:, 0].tolist() == [2, 3, 6, 7, 10, 11, 14, 15]
    assert pooled[1].tolist() == [5, 7] and pooled[0].shape == (2, 3)
    kept_all = cell_features(TwoLevels(), [(image, mask)], levels=(1, ), background=None)[0]
    assert kept_all[1].tolist() == [0, 5, 0, 7]


def test_linear_probe_separates_informative_cells_and_not_noise():
    from bnn_tasks.analysis.dense_probe import fit_linear_probe
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 3

    def cells(n, informative):
        labels = rng.integers(1, 5, n)
        feats = rng.normal(size=(n, 16)) + (centres[labels - 1] if informative else 0)
        return feats, labels

    train_acc, val_acc, majority = fit_linear_probe(cells(400, True), cells(200, True))
    assert val_acc > 0.9 and train_acc > 0.9 and 0.1 < majority < 0.5
    _, noise_acc, _ = fit_linear_probe(cells(400, False), cells(200, False))
    assert noise_acc < 0.45  # four classes: chance is 0.25
    with pytest.raises(ValueError, match='no foreground cells'):
        fit_linear_probe(cells(10, True), (np.zeros((0, 16)), np.zeros(0, np.int64)))


def test_dense_probe_cli_probes_a_saved_backbone(tiny_digits, tmp_path):
    from bnn_tasks.build import build_backbone
    from bnn_tasks.engine.backbone_pretrain import BACKBONE_PREFIX
    cfg = Config.fromfile(FCN_FLOAT_PRETRAINED)
    torch.manual_seed(0)
    backbone = build_backbone(cfg)
    ckpt = tmp_path / 'backbone.pth'
    torch.save(dict(state_dict={BACKBONE_PREFIX + k: v
                                for k, v in backbone.state_dict().items()}), ckpt)
    opts = digits_overrides(cfg, tiny_digits)
    out = tmp_path / 'probe.json'
    run = run_cli(['tools/analysis_tools/dense_probe.py', FCN_FLOAT_PRETRAINED, str(ckpt),
                   '--levels', '-1', '-2', '--scales', '1', '2', '--json', str(out),
                   '--cfg-options'] + options_to_cli(opts))
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())['results']
    assert [(r['level'], r['scale']) for r in results] == [(-1, 1), (-2, 1), (-1, 2), (-2, 2)]
    assert [r['channels'] for r in results] == [512, 256, 512, 256]
    # twice the scale, four times the cells; all of them foreground digits of 6 (4) images
    assert results[2]['train_cells'] > 2 * results[0]['train_cells'] > 0
    assert all(0 <= r['val_accuracy'] <= 1 and 0 < r['train_accuracy'] <= 1 for r in results)
    assert '| -2 | 2 | 256 |' in run.stdout


def test_dense_probe_cli_names_a_foreign_checkpoint_and_a_detection_config(tmp_path):
    ckpt = tmp_path / 'foreign.pth'
    torch.save(dict(state_dict={'backbone.conv1.weight': torch.zeros(8, 3, 3, 3)}), ckpt)
    run = run_cli(['tools/analysis_tools/dense_probe.py', FCN_FLOAT_PRETRAINED, str(ckpt)],
                  subprocess_run=True)
    assert run.returncode == 2 and 'foreign.pth' in run.stderr and 'does not fit' in run.stderr
    run = run_cli(['tools/analysis_tools/dense_probe.py', DET, str(ckpt)], subprocess_run=True)
    assert run.returncode == 2 and 'segmentation masks' in run.stderr, run.stderr
