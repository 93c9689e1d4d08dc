"""tools/benchmark.py --quick writes well-formed outputs (no timing asserts)."""
import json
import os
import subprocess
import sys

from conftest import REPO, load_tool


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
