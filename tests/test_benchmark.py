"""tools/benchmark.py --quick writes well-formed outputs (no timing asserts)."""
import json
import os
import subprocess
import sys

from conftest import REPO, digits_overrides, load_tool, options_to_cli, run_tool_in_process


def test_quick_benchmark_outputs(tmp_path):
    out = tmp_path / 'bench'
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'benchmark.py'), '--quick',
                           '--backbone', '--out-dir', str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / 'benchmark.json').read_text())
    assert set(data) == {'meta', 'summary', 'layers', 'models'}
    layers = data['layers']
    impls = {r['impl'] for r in layers}
    assert 'ort_float_conv' in impls and any(i.startswith('binary_') for i in impls)
    assert {r['threads'] for r in layers} == {1, 2}
    for r in layers:
        assert r['median_s'] > 0 and r['gmacs_per_s'] > 0 and r['speedup_vs_float'] > 0
        assert r['macs'] == r['out_channels'] * r['out_size'] ** 2 * r['in_channels'] * 9
    assert all(v > 0 for v in data['summary'].values())
    md = (out / 'benchmark.md').read_text()
    rows = [line.split(' | ') for line in md.splitlines() if line.startswith('| quick')]
    timing_rows = [r for r in rows if len(r) == 5 + len(impls)]  # model..threads + impls
    cpu_rows = [r for r in rows if len(r) == 2 + len(impls) - 1]  # 1 thread, binary impls
    assert len(timing_rows) == len({(r['name'], r['threads']) for r in layers})
    assert len(cpu_rows) == len({r['name'] for r in layers})
    assert all(r['cpu_speedup_vs_float'] > 0 for r in layers if r['threads'] == 1)
    png = (out / 'benchmark.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 1000
    # --backbone: the whole Bi-Real-18 backbone, bit-packed vs float twin vs PyTorch eager
    timed = [r for r in data['models'] if r['threads'] > 0]
    assert {r['impl'] for r in timed} >= {'ort_float', 'pytorch_eager'} | {
        i for i in impls if i.startswith('binary_')}
    assert all(r['median_s'] > 0 and r['speedup_vs_ort_float'] > 0 for r in timed)
    sizes = {r['impl']: r['size_bytes'] for r in data['models'] if r['threads'] == 0}
    assert sizes['file_size_float'] > 10 * sizes['file_size_binary']


def test_layer_lists_match_the_networks():
    benchmark = load_tool('benchmark')
    bireal = benchmark.bireal18_layers(640)
    assert sum(l.count for l in bireal) == 16  # 4 stages x 2 blocks x 2 binary 3x3 convs
    assert [(l.size, l.out_size) for l in bireal if l.stride == 2] == [(160, 80), (80, 40), (40, 20)]
    fcn = benchmark.dilated_fcn_layers(512)
    assert sum(l.count for l in fcn) == 16
    assert {l.dilation: l.out_size for l in fcn if l.dilation > 1} == {2: 64, 4: 64}


def test_ceiling_shapes_are_compute_bound_and_exact_size():
    benchmark = load_tool('benchmark')
    ceiling = benchmark.ceiling_layers()
    assert [l.out_size for l in ceiling] == [16, 16, 16]
    # >= 512 input channels: >= 72 64-bit words per output pixel in the GEMM
    assert min(l.in_channels * l.kernel ** 2 for l in ceiling) // 64 >= 72
    summary = benchmark.summarize(
        [dict(model='ceiling', name=l.name, impl=impl, threads=1, macs=l.macs, median_s=t,
              speedup_vs_float=sp, cpu_speedup_vs_float=sp)
         for l in ceiling for impl, t, sp in (('ort_float_conv', 1.0, 1.0),
                                              ('binary_avx2', 0.25, 4.0))], ['avx2'])
    assert summary['ceiling_median_speedup_avx2_1t'] == 4.0


def test_detector_mode_times_every_engine_row(tiny_digits, tmp_path):
    """--detector --quick on the tiny digits set: every engine row, sizes and a per-op profile
    that accounts for the run time (OpenVINO rows only when it is installed)."""
    import importlib.util

    from mmengine.config import Config

    from bnn_tasks.deploy import library
    config = os.path.join(REPO, 'configs/bireal/faster-rcnn_bireal18_fpn_digits.py')
    options = options_to_cli(digits_overrides(Config.fromfile(config), tiny_digits))
    out = tmp_path / 'detector'
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'benchmark.py'),
                           '--detector', config, '--quick', '--threads', '1', '--out-dir',
                           str(out), '--cfg-options', *options],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'untrained' in proc.stdout
    data = json.loads((out / 'benchmark.json').read_text())
    result = data['detector']
    expected = {f'binary:ort_{v}' for v in library.supported_kernels() + ['auto', 'int8']}
    expected |= {f'{m}:ort_{p}' for m in ('float_twin', 'r18') for p in ('fp32', 'int8')}
    if importlib.util.find_spec('openvino') is not None:
        expected |= {f'{m}:openvino_{p}' for m in ('float_twin', 'r18') for p in ('default', 'f32')}
    else:
        assert 'OpenVINO is not installed' in proc.stdout
    assert {r['impl'] for r in result['rows']} == expected
    assert all(r['median_s'] > 0 and r['binary_speedup'] > 0 for r in result['rows'])
    assert result['baseline'].endswith('faster-rcnn_r18_fpn_digits.onnx')
    md = (out / 'benchmark.md').read_text()
    for impl in expected:
        model, engine = impl.split(':')
        assert f'| {model} | {engine} |' in md, impl
    assert set(data['summary']) >= {'binary_vs_float_twin_ort_fp32_1t',
                                    'binary_vs_float_twin_ort_int8_1t', 'binary_vs_r18_ort_fp32_1t'}
    sizes = result['sizes']
    assert sizes['binary'] < sizes['float_twin'] and sizes['float_twin_int8'] < sizes['float_twin']
    assert sizes['binary_int8'] < sizes['binary']  # the float remainder's weights in int8
    # the profile: op shares of the summed run time, which the ops nearly cover
    profile = result['profile']
    ops = {o['op_type']: o for o in profile['ops']}
    # the bit-packed detector pools its RoIs with the library's op
    assert {'BinaryConv2d', 'Conv', 'MultiLevelRoiAlign'} <= set(ops) and 'RoiAlign' not in ops
    assert 0.5 < profile['ops_share'] <= 1.05
    assert abs(sum(o['share'] for o in ops.values()) - profile['ops_share']) < 1e-9
    assert '| BinaryConv2d |' in md
    assert (out / 'benchmark.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_detector_mode_names_a_missing_checkpoint(tiny_digits, tmp_path):
    from mmengine.config import Config
    config = os.path.join(REPO, 'configs/bireal/faster-rcnn_bireal18_fpn_digits.py')
    options = options_to_cli(digits_overrides(Config.fromfile(config), tiny_digits))
    missing = str(tmp_path / 'nowhere.pth')
    proc = run_tool_in_process('benchmark', ['--detector', config, missing, '--quick',
                                             '--threads', '1', '--out-dir', str(tmp_path / 'out'),
                                             '--cfg-options', *options])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert f"checkpoint '{missing}' does not exist" in proc.stderr


def test_op_profile_leaves_out_the_warmup_run():
    from bnn_tasks.deploy.op_profile import aggregate_profile

    def node(op, ts, dur):
        return dict(cat='Node', name=f'{op}_{ts}_kernel_time', ts=ts, dur=dur,
                    args=dict(op_name=op))
    events = [dict(cat='Session', name='model_run', ts=0, dur=100), node('Conv', 10, 90),
              dict(cat='Session', name='model_run', ts=200, dur=50), node('Conv', 210, 30),
              node('RoiAlign', 240, 10), dict(cat='Node', name='x_fence_before', ts=205, dur=5)]
    profile = aggregate_profile(events)
    assert profile['runs'] == 1 and profile['model_run_us'] == 50
    shares = [(o['op_type'], o['share']) for o in profile['ops']]
    assert shares == [('Conv', 0.6), ('RoiAlign', 0.2)]


def test_baseline_config_is_the_float_r18_of_the_same_task():
    benchmark = load_tool('benchmark')
    found = {name: os.path.basename(benchmark.baseline_config(f'configs/bireal/{name}.py'))
             for name in ('faster-rcnn_bireal18-bnh_fpn_digits', 'retinanet_bireal18_fpn_digits',
                          'fcn_xnorpp18-d8_digits_pretrained', 'ssd256_groupnet18_digits',
                          'fcn_bireal18-d8_digits')}
    assert found == {'faster-rcnn_bireal18-bnh_fpn_digits': 'faster-rcnn_r18_fpn_digits.py',
                     'retinanet_bireal18_fpn_digits': 'retinanet_r18_fpn_digits.py',
                     'fcn_bireal18-d8_digits': 'fcn_r18-d8_digits.py',
                     'fcn_xnorpp18-d8_digits_pretrained': 'fcn_r18-d8_digits_pretrained.py',
                     'ssd256_groupnet18_digits': 'ssd256_r18_digits.py'}
