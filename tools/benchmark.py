"""Per-layer speed of the bnn_tasks::BinaryConv2d kernel against ONNX Runtime's float Conv.

For every binary conv shape of Bi-Real-18 at a 640x640 detector input and of the dilated FCN
backbone (strides (1,2,1,1), dilations (1,1,2,4)) at 512x512, times single-node models:
ONNX Runtime's float ``Conv`` and our op with each kernel variant the CPU supports, at 1 and 2
intra-op threads. Medians over repeated runs in one process.

    python tools/benchmark.py --out-dir work_dirs/benchmark          # full (~10 min on 2 cores)
    python tools/benchmark.py --quick --out-dir /tmp/bench            # tiny shapes, seconds
    python tools/benchmark.py --onnx model.onnx --out-dir ...         # also time whole models

Writes ``benchmark.json``, ``benchmark.md`` (tables + summary) and ``benchmark.png`` into
``--out-dir``. Whole-model benchmarks plug in with :func:`register_model_benchmark`.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from bnn_tasks.deploy import library, op_spec, single_op
from bnn_tasks.machine import cpu_name


@dataclass(frozen=True)
class ConvLayer:
    """One binary conv shape; ``count`` is how many layers of the network share it."""
    model: str
    name: str
    in_channels: int
    out_channels: int
    size: int        # input height = width
    stride: int
    dilation: int
    count: int
    kernel: int = 3

    @property
    def out_size(self) -> int:
        pad = self.dilation
        return op_spec.conv_output_size(self.size, self.kernel, self.stride, pad, pad,
                                        self.dilation)

    @property
    def macs(self) -> int:
        return self.out_channels * self.out_size ** 2 * self.in_channels * self.kernel ** 2


def resnet18_binary_layers(model: str, input_size: int, strides: Sequence[int],
                           dilations: Sequence[int]) -> List[ConvLayer]:
    """The distinct binary 3x3 conv shapes of a ResNet-18-layout binary backbone.

    The stem (7x7/2 + maxpool) gives /4; each stage's first conv carries its stride (and the
    width change), the other three of its four binary convs repeat one shape.
    """
    size, in_ch = input_size // 4, 64
    layers = []
    for stage, (stride, dilation) in enumerate(zip(strides, dilations)):
        out_ch = 64 * 2 ** stage
        name = f'stage{stage + 1} {{}}->{out_ch}'
        dil_tag = f' d{dilation}' if dilation > 1 else ''
        if in_ch == out_ch and stride == 1:  # the whole stage is one shape
            layers.append(ConvLayer(model, name.format(in_ch) + dil_tag, in_ch, out_ch, size,
                                    1, dilation, 4))
        else:
            first_tag = f' /{stride}' if stride > 1 else dil_tag
            layers.append(ConvLayer(model, name.format(in_ch) + first_tag, in_ch, out_ch, size,
                                    stride, dilation, 1))
            size //= stride
            layers.append(ConvLayer(model, name.format(out_ch) + dil_tag, out_ch, out_ch, size,
                                    1, dilation, 3))
        in_ch = out_ch
    return layers


def bireal18_layers(input_size: int = 640) -> List[ConvLayer]:
    """Bi-Real-18: every binary conv is 3x3 (shortcuts are FP), strides (1,2,2,2)."""
    return resnet18_binary_layers(f'bireal18@{input_size}', input_size, (1, 2, 2, 2),
                                  (1, 1, 1, 1))


def dilated_fcn_layers(input_size: int = 512) -> List[ConvLayer]:
    """Dilated ResNet-18 backbone of FCN: strides (1,2,1,1), dilations (1,1,2,4) -> /8."""
    return resnet18_binary_layers(f'fcn-dilated18@{input_size}', input_size, (1, 2, 1, 1),
                                  (1, 1, 2, 4))


def ceiling_layers() -> List[ConvLayer]:
    """Compute-bound shapes (many input channels, small maps): packing, im2col and epilogue
    are a few percent, so the speedup here is about the highest the GEMM can give over ONNX
    Runtime's float Conv on this CPU: the ceiling for the network layers above."""
    return [ConvLayer('ceiling', f'{c}->512 @16', c, 512, 16, 1, 1, 1) for c in (512, 1024, 2048)]


def quick_layers() -> List[ConvLayer]:
    return [ConvLayer('quick', 'small 64->64', 64, 64, 16, 1, 1, 1),
            ConvLayer('quick', 'small 128->128 d2', 128, 128, 8, 1, 2, 1)]


def float_session(model, threads: int):
    """Plain ONNX Runtime session (no custom ops), configured like :func:`binary_session`."""
    return library.create_session(model, threads, register_library=False,
                                  spinning=threads == 1)


def binary_session(model, threads: int, kernel: Optional[str]):
    """Session with our op. Sessions are timed in turns: with > 1 thread the idle pool of the
    session that just ran would keep spinning on the cores the next one needs (measured here:
    2 threads *slower* than 1 for every implementation), so pools sleep between runs."""
    return library.make_session(model, threads=threads, kernel=kernel, spinning=threads == 1)


def time_session(session, feeds: dict, min_time: float, min_runs: int, max_runs: int) -> dict:
    """Median wall time (s) of ``session.run`` after one warm-up run."""
    return time_sessions({'only': session}, feeds, min_time, min_runs, max_runs)['only']


def time_sessions(sessions: Dict[str, object], feeds: dict, min_time: float, min_runs: int,
                  max_runs: int) -> Dict[str, dict]:
    """Median wall time (s) of each session, measured round-robin.

    Interleaving the implementations spreads any load from other processes evenly over them,
    so the speedups stay meaningful on a shared machine. ``min_time`` is per implementation.
    """
    for session in sessions.values():
        session.run(None, feeds)  # warm-up: weight repacking, arena allocation
    times = {name: [] for name in sessions}
    cpu_times = {name: [] for name in sessions}
    start = time.perf_counter()
    budget = min_time * len(sessions)
    rounds = 0
    while rounds < max_runs and (rounds < min_runs or time.perf_counter() - start < budget):
        for name, session in sessions.items():
            c = time.thread_time()
            t = time.perf_counter()
            session.run(None, feeds)
            times[name].append(time.perf_counter() - t)
            cpu_times[name].append(time.thread_time() - c)
        rounds += 1
    # cpu_s: CPU time of the calling thread. With 1 intra-op thread ONNX Runtime computes on the
    # calling thread, so this is the load-independent cost; with more threads it is meaningless.
    return {name: dict(median_s=statistics.median(ts), runs=len(ts), min_s=min(ts),
                       median_cpu_s=statistics.median(cpu_times[name]))
            for name, ts in times.items()}


def benchmark_layer(layer: ConvLayer, threads: int, variants: Sequence[str], timing: dict,
                    seed: int = 0) -> List[dict]:
    rng = np.random.default_rng(seed)
    c, o, s, k = layer.in_channels, layer.out_channels, layer.size, layer.kernel
    pads = (layer.dilation,) * 4
    weight = rng.standard_normal((o, c, k, k)).astype(np.float32)
    x = rng.standard_normal((1, c, s, s)).astype(np.float32)
    feeds = {'X': x}
    records = []

    def record(impl, result, macs_kind):
        rec = dict(asdict(layer), out_size=layer.out_size, macs=layer.macs, threads=threads,
                   impl=impl, macs_kind=macs_kind, **result)
        rec['gmacs_per_s'] = layer.macs / result['median_s'] / 1e9
        records.append(rec)

    float_model = single_op.float_conv_model(weight, None, [1, c, s, s], (layer.stride,) * 2,
                                             pads, (layer.dilation,) * 2)
    sessions = {'ort_float_conv': float_session(float_model.SerializeToString(), threads)}
    binary_model = single_op.binary_conv_model(
        weight, rng.uniform(0.5, 1.5, o).astype(np.float32), np.zeros(o, np.float32),
        [1, c, s, s], (layer.stride,) * 2, pads, (layer.dilation,) * 2)
    for variant in variants:
        sessions[f'binary_{variant}'] = binary_session(binary_model, threads, variant)
    for impl, result in time_sessions(sessions, feeds, **timing).items():
        record(impl, result, 'float' if impl == 'ort_float_conv' else 'binary')
    float_rec = next(r for r in records if r['impl'] == 'ort_float_conv')
    for rec in records:
        rec['speedup_vs_float'] = float_rec['median_s'] / rec['median_s']
        if threads == 1:
            rec['cpu_speedup_vs_float'] = float_rec['median_cpu_s'] / rec['median_cpu_s']
    return records


# ---- whole-model benchmarks (hook for bnn_tasks.deploy.export users) ----

# name -> callable(args) returning (onnx model or path, feeds dict, uses_custom_op: bool)
MODEL_BENCHMARKS: Dict[str, Callable[[argparse.Namespace], Tuple[object, dict, bool]]] = {}


def register_model_benchmark(name: str):
    """Decorator: add a whole-model benchmark, timed at every thread count and kernel variant.

    The function gets the parsed CLI args and returns ``(model, feeds, uses_custom_op)`` where
    ``model`` is an ``onnx.ModelProto``, bytes or a path.
    """
    def wrap(fn):
        MODEL_BENCHMARKS[name] = fn
        return fn
    return wrap


def random_feeds(model) -> dict:
    """Random float32 inputs for an ONNX model's declared (static) input shapes."""
    import onnx
    if not hasattr(model, 'graph'):
        model = onnx.load(model) if isinstance(model, str) else onnx.load_from_string(model)
    init_names = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(0)
    feeds = {}
    for inp in model.graph.input:
        if inp.name in init_names:
            continue
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
        feeds[inp.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def time_model(model, feeds: dict, threads: int, kernel: Optional[str], timing: dict) -> dict:
    """Median run time of a whole model; ``kernel=None`` for graphs without our op."""
    if hasattr(model, 'SerializeToString'):
        model = model.SerializeToString()
    if kernel is None:
        session = float_session(model, threads)
    else:
        session = binary_session(model, threads, kernel)
    return time_session(session, feeds, **timing)


def run_model_benchmarks(args, variants, timing) -> List[dict]:
    benches = dict(MODEL_BENCHMARKS)
    for path in args.onnx or []:
        benches[os.path.basename(path)] = (
            lambda _args, p=path: (p, random_feeds(p), _uses_custom_op(p)))
    records = []
    for name, build in benches.items():
        model, feeds, custom = build(args)
        for threads in args.threads:
            for kernel in (variants if custom else [None]):
                result = time_model(model, feeds, threads, kernel, timing)
                records.append(dict(model=name, threads=threads,
                                    impl=f'binary_{kernel}' if kernel else 'ort_float', **result))
                print(f'  {name:30s} t={threads} {records[-1]["impl"]:16s} '
                      f'{result["median_s"] * 1e3:8.2f} ms', flush=True)
    return records


class _TorchEager:
    """``session.run``-shaped wrapper so PyTorch eager is timed round-robin with the sessions."""

    def __init__(self, model, x):
        self.model, self.x = model, x

    def run(self, _outputs, _feeds):
        import torch
        with torch.no_grad():
            return self.model(self.x)


def backbone_records(args, variants, timing) -> List[dict]:
    """The Bi-Real-18 backbone at 640x640 (128 with ``--quick``), end to end: its bit-packed export (each kernel
    variant) vs its float twin in ONNX Runtime vs PyTorch eager, round-robin per thread count.

    Random weights with BN in eval mode: speed does not depend on the values. The two exports
    are written to ``--out-dir`` so their sizes are reported too.
    """
    import torch
    from mmdet.registry import MODELS

    import bnn_tasks  # noqa: F401  (registers the backbone)
    from bnn_tasks.deploy.export import export_model, file_size
    shape = (128, 128) if args.quick else (640, 640)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='BiRealResNet', depth=18)).eval()
    os.makedirs(args.out_dir, exist_ok=True)
    paths = {mode: os.path.join(args.out_dir, f'bireal18_backbone_{mode}.onnx')
             for mode in ('binary', 'float')}
    for mode, path in paths.items():
        export_model(model, path, shape, mode)
    feeds = random_feeds(paths['binary'])
    x = torch.from_numpy(next(iter(feeds.values())))
    name = f'bireal18_backbone@{shape[0]}'
    records = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        sessions = {'ort_float': float_session(paths['float'], threads)}
        for variant in variants:
            sessions[f'binary_{variant}'] = binary_session(paths['binary'], threads, variant)
        sessions['pytorch_eager'] = _TorchEager(model, x)
        results = time_sessions(sessions, feeds, **timing)
        base = results['ort_float']['median_s']
        for impl, r in results.items():
            records.append(dict(model=name, threads=threads, impl=impl,
                                speedup_vs_ort_float=base / r['median_s'], **r))
            print(f'  {name:30s} t={threads} {impl:16s} {r["median_s"] * 1e3:8.2f} ms '
                  f'({base / r["median_s"]:.2f}x vs ORT float twin)', flush=True)
    for mode, path in paths.items():
        records.append(dict(model=name, threads=0, impl=f'file_size_{mode}',
                            median_s=float('nan'), size_bytes=file_size(path)))
    return records


def _uses_custom_op(path) -> bool:
    import onnx
    return any(op_spec.is_binary_conv(n) for n in onnx.load(path).graph.node)


# ---- reporting ----

def summarize(records: List[dict], variants: Sequence[str]) -> dict:
    """Targets from docs/kernels.md, reported (never asserted)."""
    out = {}
    bireal = [r for r in records if r['model'].startswith('bireal18')]
    for variant in variants:
        for threads in sorted({r['threads'] for r in records}):
            sp = [r['speedup_vs_float'] for r in bireal
                  if r['impl'] == f'binary_{variant}' and r['threads'] == threads]
            if sp:
                out[f'bireal18_median_speedup_{variant}_{threads}t'] = statistics.median(sp)
        cpu = [r['cpu_speedup_vs_float'] for r in bireal
               if r['impl'] == f'binary_{variant}' and r['threads'] == 1]
        if cpu:  # the same, from CPU time: robust against other processes on the machine
            out[f'bireal18_median_speedup_{variant}_1t_cputime'] = statistics.median(cpu)
        ceiling = [r['speedup_vs_float'] for r in records if r['model'] == 'ceiling'
                   and r['impl'] == f'binary_{variant}' and r['threads'] == 1]
        if ceiling:
            out[f'ceiling_median_speedup_{variant}_1t'] = statistics.median(ceiling)
    # The int8 tile variant against the popcount one, layer by layer (same process, same run).
    for threads in sorted({r['threads'] for r in bireal}):
        by_layer = {}
        for r in bireal:
            if r['threads'] == threads and r['impl'] in ('binary_amx', 'binary_avx512'):
                by_layer.setdefault(r['name'], {})[r['impl']] = r
        ratios = [v['binary_avx512']['median_s'] / v['binary_amx']['median_s']
                  for v in by_layer.values() if len(v) == 2]
        if ratios:
            out[f'bireal18_median_amx_over_avx512_{threads}t'] = statistics.median(ratios)
        cpu = [v['binary_avx512']['median_cpu_s'] / v['binary_amx']['median_cpu_s']
               for v in by_layer.values() if len(v) == 2 and threads == 1]
        if cpu:
            out['bireal18_median_amx_over_avx512_1t_cputime'] = statistics.median(cpu)
    # 2-thread scaling: median over each model's largest layers (by MACs) of t(1) / t(2).
    for model in sorted({r['model'] for r in records}):
        rows = [r for r in records if r['model'] == model]
        biggest = max(r['macs'] for r in rows)
        for variant in ['ort_float_conv'] + [f'binary_{v}' for v in variants]:
            by_layer = {}
            for r in rows:
                if r['macs'] == biggest and r['impl'] == variant:
                    by_layer.setdefault(r['name'], {})[r['threads']] = r['median_s']
            ratios = [t[1] / t[2] for t in by_layer.values() if 1 in t and 2 in t]
            if ratios:
                out[f'{model}_largest_layers_2t_scaling_{variant}'] = statistics.median(ratios)
    return out


def _impl_order(impl: str):
    """Float baseline first, then the variants slowest to fastest."""
    order = ['ort_float_conv'] + [f'binary_{v}' for v in library.KERNEL_VARIANTS]
    return (order.index(impl) if impl in order else len(order), impl)


def markdown(records: List[dict], summary: dict, meta: dict, model_records: List[dict]) -> str:
    lines = [f'# BinaryConv2d per-layer benchmark', '',
             f'- command: `{meta["command"]}`',
             f'- CPU: {meta["cpu"]}; onnxruntime {meta["onnxruntime"]}; auto kernel: '
             f'{meta["auto_kernel"]}; wall time {meta["wall_time_s"]:.0f} s; load average at the '
             f'end {meta["load_average"][0]:.1f} (implementations are timed round-robin)', '',
             'Median ms per run (speedup over ONNX Runtime float Conv of the same shape; '
             'GMAC/s = binary or float multiply-accumulates per second).', '']
    impls = sorted({r['impl'] for r in records}, key=_impl_order)
    header = '| model | layer | in -> out | count | threads | ' + ' | '.join(impls) + ' |'
    lines += [header, '|' + '---|' * (5 + len(impls))]
    keyed = {}
    for r in records:
        keyed.setdefault((r['model'], r['name'], r['threads']), {})[r['impl']] = r
    for (model, name, threads), by_impl in keyed.items():
        any_r = next(iter(by_impl.values()))
        shape = f'{any_r["in_channels"]}x{any_r["size"]}² -> {any_r["out_channels"]}x{any_r["out_size"]}²'
        cells = []
        for impl in impls:
            r = by_impl.get(impl)
            cells.append('' if r is None else
                         f'{r["median_s"] * 1e3:.2f} ({r["speedup_vs_float"]:.1f}x, '
                         f'{r["gmacs_per_s"]:.0f})')
        lines.append(f'| {model} | {name} | {shape} | {any_r["count"]} | {threads} | ' +
                     ' | '.join(cells) + ' |')
    one = [k for k in keyed if k[2] == 1]
    if one:
        binary = [i for i in impls if i != 'ort_float_conv']
        lines += ['', '1 thread, speedup over float Conv from the CPU time of the computing thread '
                  '(insensitive to other processes on the machine):', '',
                  '| model | layer | ' + ' | '.join(binary) + ' |', '|' + '---|' * (2 + len(binary))]
        for model, name, _ in one:
            by_impl = keyed[(model, name, 1)]
            lines.append(f'| {model} | {name} | ' + ' | '.join(
                f'{by_impl[i]["cpu_speedup_vs_float"]:.1f}x' if i in by_impl else ''
                for i in binary) + ' |')
    lines += ['', '## Summary (targets are reported, not asserted)', '']
    for k, v in summary.items():
        lines.append(f'- `{k}`: {v:.2f}x')
    if model_records:
        lines += ['', '## Whole models', '', '| model | threads | impl | median ms |',
                  '|---|---|---|---|']
        for r in model_records:
            value = (f'{r["size_bytes"] / 2**20:.2f} MiB' if 'size_bytes' in r
                     else f'{r["median_s"] * 1e3:.2f}')
            lines.append(f'| {r["model"]} | {r["threads"]} | {r["impl"]} | {value} |')
    return '\n'.join(lines) + '\n'


def chart(records: List[dict], path: str):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    threads = sorted({r['threads'] for r in records})
    fig, axes = plt.subplots(len(threads), 1, figsize=(12, 4 * len(threads)), squeeze=False)
    impls = sorted({r['impl'] for r in records if r['impl'] != 'ort_float_conv'}, key=_impl_order)
    for ax, t in zip(axes[:, 0], threads):
        rows = [r for r in records if r['threads'] == t]
        layers = list(dict.fromkeys((r['model'], r['name']) for r in rows))
        width = 0.8 / max(1, len(impls))
        for i, impl in enumerate(impls):
            vals = [next((r['speedup_vs_float'] for r in rows
                          if (r['model'], r['name']) == lay and r['impl'] == impl), 0)
                    for lay in layers]
            ax.bar(np.arange(len(layers)) + i * width, vals, width, label=impl)
        ax.axhline(1.0, color='k', lw=0.8)
        ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2)
        ax.set_xticklabels([f'{m.split("@")[0]}\n{n}' for m, n in layers], rotation=60,
                           ha='right', fontsize=7)
        ax.set_ylabel('speedup vs ORT float Conv')
        ax.set_title(f'BinaryConv2d vs float Conv, {t} thread(s)')
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', required=True, help='where to write json/md/png')
    parser.add_argument('--quick', action='store_true', help='two tiny layers, few runs (tests)')
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--variants', nargs='+', default=None,
                        help=f'kernel variants (default: all this CPU supports of '
                             f'{library.KERNEL_VARIANTS}; "auto" adds the library\'s own '
                             f'per-layer choice)')
    parser.add_argument('--models', nargs='+', default=['bireal18', 'fcn'],
                        choices=['bireal18', 'fcn', 'ceiling'],
                        help='layer sets to time (ceiling: compute-bound shapes that show the '
                             'highest speedup the GEMM can give on this CPU)')
    parser.add_argument('--min-time', type=float, default=0.5, help='seconds per measurement')
    parser.add_argument('--min-runs', type=int, default=5)
    parser.add_argument('--max-runs', type=int, default=50)
    parser.add_argument('--onnx', nargs='*', help='also time these whole ONNX models')
    parser.add_argument('--backbone', action='store_true',
                        help='also export and time the whole Bi-Real-18 backbone at 640x640: '
                             'bit-packed vs float twin (ONNX Runtime) vs PyTorch eager')
    args = parser.parse_args(argv)

    import onnxruntime as ort
    started = time.time()
    supported = library.supported_kernels()
    variants = args.variants or supported
    # 'auto' (not in the default list): the library's own choice, per layer for whole models
    missing = [v for v in variants if v not in supported + ['auto']]
    if missing:
        parser.error(f'this CPU cannot run kernel variant(s) {missing} (supported: {supported})')
    if args.quick:
        layers = quick_layers()
        timing = dict(min_time=0.0, min_runs=2, max_runs=2)
    else:
        layers = []
        if 'bireal18' in args.models:
            layers += bireal18_layers(640)
        if 'fcn' in args.models:
            layers += dilated_fcn_layers(512)
        if 'ceiling' in args.models:
            layers += ceiling_layers()
        timing = dict(min_time=args.min_time, min_runs=args.min_runs, max_runs=args.max_runs)

    records = []
    for layer in layers:
        for threads in args.threads:
            rows = benchmark_layer(layer, threads, variants, timing)
            records += rows
            print(f'{layer.model:22s} {layer.name:22s} t={threads} ' + '  '.join(
                f'{r["impl"].replace("binary_", "")}={r["median_s"] * 1e3:.2f}ms'
                f'({r["speedup_vs_float"]:.1f}x)' for r in rows), flush=True)
    model_records = run_model_benchmarks(args, variants, timing)
    if args.backbone:
        model_records += backbone_records(args, variants, timing)

    summary = summarize(records, variants)
    meta = dict(load_average=os.getloadavg(), command='python ' + ' '.join([os.path.relpath(__file__)] + sys.argv[1:]
                                             if argv is None else ['tools/benchmark.py'] + argv),
                cpu=cpu_name(), onnxruntime=ort.__version__, auto_kernel=library.selected_kernel('auto'),
                python=platform.python_version(), wall_time_s=time.time() - started,
                variants=list(variants), threads=args.threads, quick=args.quick)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, 'benchmark.json'), 'w') as f:
        json.dump(dict(meta=meta, summary=summary, layers=records, models=model_records), f,
                  indent=1)
    with open(os.path.join(args.out_dir, 'benchmark.md'), 'w') as f:
        f.write(markdown(records, summary, meta, model_records))
    chart(records, os.path.join(args.out_dir, 'benchmark.png'))
    print('\n'.join(f'{k}: {v:.2f}x' for k, v in summary.items()))
    print(f'wrote {args.out_dir}/benchmark.{{json,md,png}} in {meta["wall_time_s"]:.0f} s')


if __name__ == '__main__':
    main()
