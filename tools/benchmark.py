"""Per-layer speed of the bnn_tasks::BinaryConv2d kernel against ONNX Runtime's float Conv.

For every binary conv shape of Bi-Real-18 at a 640x640 detector input and of the dilated FCN
backbone (strides (1,2,1,1), dilations (1,1,2,4)) at 512x512, times single-node models:
ONNX Runtime's float ``Conv`` and our op with each kernel variant the CPU supports, at 1 and 2
intra-op threads. Medians over repeated runs in one process.

    python tools/benchmark.py --out-dir work_dirs/benchmark          # full (~10 min on 2 cores)
    python tools/benchmark.py --quick --out-dir /tmp/bench            # tiny shapes, seconds
    python tools/benchmark.py --onnx model.onnx --out-dir ...         # also time whole models

Whole detector or segmentor (``--detector CONFIG [CHECKPOINT]``, instead of the layers): exports
the bit-packed model, its float twin and the float ResNet-18 of ``configs/baselines/`` (untrained
weights without a checkpoint), quantizes both float models to int8 (ONNX Runtime static QDQ,
calibrated on training images) and times, round-robin on real test images: the bit-packed model
with each kernel variant and ``auto``, the float models in ONNX Runtime fp32 and int8 and, when
``openvino`` is installed (``pip install -e .[bench]``), in OpenVINO at its default precision and
at f32; plus the bit-packed model's per-op profile and the file sizes:

    python tools/benchmark.py --detector configs/bireal/faster-rcnn_bireal18_fpn_digits.py \
        --out-dir docs/results/detector --export-dir work_dirs/bench_detector

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

from mmengine.config import DictAction

from bnn_tasks.analysis.markdown import markdown_table
from bnn_tasks.deploy import library, op_spec, single_op
from bnn_tasks.deploy.model_benchmark import time_session, time_sessions
from bnn_tasks.machine import machine_description


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


# ---- whole detector or segmentor against the engines a user would run instead (--detector) ----

BASELINE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            'configs', 'baselines')
FLOAT_MODELS = ('float_twin', 'r18')  # the binary model's float twin, the plain float ResNet-18


def baseline_config(config: str) -> Optional[str]:
    """The plain float ResNet-18 config of the same task and data: the binary config's name with
    its backbone as r18, and then without its variant tags (``-bnh``: the float twin of a
    binary-neck-and-heads detector is the same float detector) and trailing ``_part``s until
    ``configs/baselines`` has it (faster-rcnn_bireal18-bnh_fpn_digits -> faster-rcnn_r18_fpn_digits,
    fcn_xnorpp18-d8_digits -> fcn_r18-d8_digits)."""
    import itertools
    import re
    name = os.path.splitext(os.path.basename(config))[0]
    match = re.search(r'(bireal|xnorpp|groupnet|r)(\d+)((?:-[^_]+)*)', name)
    if match is None:
        return None
    tags = re.findall(r'-[^-]+', match.group(3))
    for dropped in range(len(tags) + 1):  # keep as many tags as possible
        for kept in itertools.combinations(tags, len(tags) - dropped):
            candidate = (name[:match.start()] + f'r{match.group(2)}' + ''.join(kept)
                         + name[match.end():])
            while True:
                path = os.path.join(BASELINE_DIR, candidate + '.py')
                if os.path.isfile(path):
                    return path
                if '_' not in candidate:
                    break
                candidate = candidate.rsplit('_', 1)[0]
    return None


def load_config(path: str, options: Optional[dict]):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def export_config(cfg, checkpoint: Optional[str], out_dir: str, name: str, shape, sample,
                  modes: Sequence[str]) -> Dict[str, str]:
    """Export ``cfg``'s model (``checkpoint``'s weights, else seeded random ones) in ``modes``
    as tools/deploy.py names them (NAME.onnx, NAME_float.onnx); returns ``{mode: path}``."""
    import torch

    from bnn_tasks.deploy.export import export_model
    from bnn_tasks.deploy.export_record import RECORD_KEY, pipeline_record
    from bnn_tasks.build import build_model
    from bnn_tasks.checkpoint import load_checkpoint_strict
    torch.manual_seed(0)  # untrained: the same random weights every run
    model = build_model(cfg)
    if checkpoint:
        load_checkpoint_strict(model, checkpoint)
    task = 'segmentation' if cfg.get('default_scope') == 'mmseg' else 'detection'
    record = pipeline_record(cfg, task, getattr(model, 'dataset_meta', None))
    x, valid_hw = sample
    paths = {}
    for mode in modes:
        suffix = '_float' if mode == 'float' and 'binary' in modes else ''
        paths[mode] = os.path.join(out_dir, f'{name}{suffix}.onnx')
        export_model(model, paths[mode], shape, mode, example_input=torch.from_numpy(x),
                     valid_hw=valid_hw, metadata={RECORD_KEY: json.dumps(record)})
    return paths


def detector_models(args, cfg, shape, sample) -> Dict[str, str]:
    """Paths of the bit-packed model, its float twin and the float ResNet-18 baseline, each
    exported now unless ``--exported`` names it."""
    config, checkpoint = args.detector[0], (args.detector[1:] or [None])[0]
    name = os.path.splitext(os.path.basename(config))[0]
    paths = {}
    if args.exported:
        paths.update(binary=args.exported[0], float_twin=args.exported[1])
        if len(args.exported) > 2:
            paths['r18'] = args.exported[2]
    else:
        exported = export_config(cfg, checkpoint, args.export_dir, name, shape, sample,
                                 ['binary', 'float'])
        paths.update(binary=exported['binary'], float_twin=exported['float'])
    baseline = args.baseline or baseline_config(config)
    if 'r18' not in paths and baseline and baseline.lower() != 'none':
        base_cfg = load_config(baseline, args.cfg_options)
        base_ckpt = args.baseline_checkpoint
        paths['r18'] = export_config(base_cfg, base_ckpt, args.export_dir,
                                     os.path.splitext(os.path.basename(baseline))[0], shape,
                                     sample, ['float'])['float']
    elif 'r18' not in paths:
        print(f'no float ResNet-18 baseline config found for {config} (pass --baseline)')
    return paths


def detector_sessions(paths: Dict[str, str], variants: Sequence[str], threads: int,
                      openvino: bool) -> Dict[str, object]:
    """``'model:engine'`` -> session: the bit-packed model with each kernel variant, each
    float model in ONNX Runtime fp32 and int8 and, if installed, OpenVINO (default, f32)."""
    sessions = {f'binary:ort_{v}': binary_session(paths['binary'], threads, v) for v in variants}
    if 'binary_int8' in paths:
        sessions['binary:ort_int8'] = binary_session(paths['binary_int8'], threads, 'auto')
    for model in FLOAT_MODELS:
        if model not in paths:
            continue
        sessions[f'{model}:ort_fp32'] = float_session(paths[model], threads)
        sessions[f'{model}:ort_int8'] = float_session(paths[f'{model}_int8'], threads)
        if openvino:
            from bnn_tasks.deploy.openvino_engine import OpenVinoSession
            sessions[f'{model}:openvino_default'] = OpenVinoSession(paths[model], threads)
            sessions[f'{model}:openvino_f32'] = OpenVinoSession(paths[model], threads, 'f32')
    return sessions


def mean_detections(session, feeds: Sequence[dict]) -> Optional[float]:
    """Boxes after NMS per image (a detector's first output is ``dets`` [.., 5]); the amount of
    post-processing work, which depends on the weights."""
    counts = []
    for feed in feeds:
        dets = np.asarray(session.run(None, feed)[0])
        if dets.shape[-1] != 5:
            return None  # a segmentor
        counts.append(dets.reshape(-1, 5).shape[0])
    return float(np.mean(counts))


def detector_benchmark(args, variants, timing) -> dict:
    """Everything ``--detector`` measures: engine rows per thread count, file sizes, the
    binary model's per-op profile and the bit-packed model's speedup over each row."""
    from bnn_tasks.deploy.dataset_feeds import as_feeds, dataset_inputs
    from bnn_tasks.deploy.export import file_size
    from bnn_tasks.deploy.op_profile import profile_ops
    from bnn_tasks.deploy.openvino_engine import openvino_version
    from bnn_tasks.deploy.quantize import int8_weight_bits, quantize_int8
    args.export_dir = args.export_dir or args.out_dir
    for folder in (args.out_dir, args.export_dir):
        os.makedirs(folder, exist_ok=True)
    cfg = load_config(args.detector[0], args.cfg_options)
    if args.shape:
        shape = tuple(args.shape)
    else:
        from bnn_tasks.build import input_shape_of
        shape = input_shape_of(cfg)
    try:
        samples = dataset_inputs(cfg, shape, args.images)
        calibration = dataset_inputs(cfg, shape, args.calibration_images, split='train')
    except ValueError as err:
        raise SystemExit(f'error: {err}')
    paths = detector_models(args, cfg, shape, samples[0])
    feeds = as_feeds(samples, paths['binary'])
    # the float twins in int8, and the bit-packed model with its float remainder in int8
    for model in FLOAT_MODELS + ('binary',):
        if model in paths:
            paths[f'{model}_int8'] = quantize_int8(
                paths[model], os.path.join(
                    args.export_dir, os.path.basename(paths[model])[:-len('.onnx')] + '_int8.onnx'),
                as_feeds(calibration, paths[model]))
    ov = openvino_version()
    if ov is None:
        print('OpenVINO is not installed: its rows are skipped (pip install -e .[bench])')
    checkpoint = (args.detector[1:] or [None])[0]
    if not checkpoint:
        print('no checkpoint: untrained (seeded random) weights. Speed does not depend on the '
              'weights except through post-processing (how many boxes reach NMS)')
    rows, detections, precisions = [], {}, {}
    for threads in args.threads:
        sessions = detector_sessions(paths, variants, threads, ov is not None)
        for impl, session in sessions.items():
            precisions[impl] = getattr(session, 'precision', None)
            if impl not in detections:
                detections[impl] = mean_detections(session, feeds[:4])
        results = time_sessions(sessions, feeds, **timing)
        reference = results.get('binary:ort_auto') or min(
            (r for k, r in results.items() if k.startswith('binary:')), key=lambda r: r['median_s'])
        for impl, r in results.items():
            model, engine = impl.split(':')
            rows.append(dict(model=model, engine=engine, impl=impl, threads=threads,
                             precision=precisions[impl], detections_per_image=detections[impl],
                             binary_speedup=r['median_s'] / reference['median_s'],
                             binary_cpu_speedup=r['median_cpu_s'] / reference['median_cpu_s'],
                             **r))
            print(f'  t={threads} {impl:28s} {r["median_s"] * 1e3:8.2f} ms  (bit-packed is '
                  f'{rows[-1]["binary_speedup"]:.2f}x faster)', flush=True)
        del sessions
    profile = profile_ops(paths['binary'], feeds, runs=2 if args.quick else 10, threads=1)
    return dict(config=args.detector[0], checkpoint=checkpoint, shape=list(shape),
                baseline=paths.get('r18'), images=len(feeds),
                calibration_images=len(calibration), int8_weight_bits=int8_weight_bits(),
                openvino=ov, rows=rows, profile=profile,
                sizes={name: file_size(path) for name, path in paths.items()})


def detector_summary(result: dict) -> dict:
    """How many times faster the bit-packed model (auto kernel) is than each float row, and
    at 1 thread the same from CPU time (ONNX Runtime rows: it computes on the calling thread)."""
    out = {}
    for r in result['rows']:
        if r['model'] == 'binary':
            continue
        out[f'binary_vs_{r["impl"].replace(":", "_")}_{r["threads"]}t'] = r['binary_speedup']
        if r['threads'] == 1 and r['engine'].startswith('ort'):
            out[f'binary_vs_{r["impl"].replace(":", "_")}_1t_cputime'] = r['binary_cpu_speedup']
    return out


def detector_markdown(result: dict, summary: dict, meta: dict) -> str:
    threads = sorted({r['threads'] for r in result['rows']})
    weights = result['checkpoint'] or 'untrained (seeded random) weights'
    lines = [f'# Whole-model benchmark: {os.path.basename(result["config"])}', '',
             f'- command: `{meta["command"]}`',
             f'- CPU: {meta["cpu"]}; onnxruntime {meta["onnxruntime"]}; OpenVINO '
             f'{result["openvino"] or "not installed (pip install -e .[bench])"}; wall time '
             f'{meta["wall_time_s"]:.0f} s; load average at the start '
             f'{meta["load_average_start"][0]:.1f}, at the end {meta["load_average"][0]:.1f} '
             '(all rows timed round-robin in one process: compare within a column)',
             f'- input {result["shape"][0]}x{result["shape"][1]}, {result["images"]} test images '
             f'of the data set cycled; int8: ONNX Runtime static quantization (QDQ, per-channel, '
             f'U8S8, {result.get("int8_weight_bits", 8)}-bit weights) calibrated on '
             f'{result["calibration_images"]} training images',
             f'- weights: {weights}; float ResNet-18: {result["baseline"]}', '',
             'Median ms per run (in brackets: how many times faster the bit-packed model with '
             'the automatic kernel choice is). dets/img: boxes after NMS on the first images '
             '(post-processing work depends on the weights).', '']
    keyed = {}
    for r in result['rows']:
        keyed.setdefault(r['impl'], {})[r['threads']] = r
    cells = []
    for impl, by_t in keyed.items():
        any_r = next(iter(by_t.values()))
        dets = any_r['detections_per_image']
        cells.append([any_r['model'], any_r['engine'], any_r['precision'] or '']
                     + [f'{by_t[t]["median_s"] * 1e3:.1f} ({by_t[t]["binary_speedup"]:.2f}x)'
                        if t in by_t else '' for t in threads]
                     + ['' if dets is None else f'{dets:.1f}'])
    lines.append(markdown_table(['model', 'engine', 'precision']
                                + [f'{t} thread(s)' for t in threads] + ['dets/img'], cells))
    lines += ['', '## File sizes', '',
              markdown_table(['model', 'MiB'], [(name, f'{size / 2**20:.2f}')
                                                for name, size in result['sizes'].items()])]
    prof = result['profile']
    per_run_ms = prof['model_run_us'] / max(1, prof['runs']) / 1e3
    lines += ['', f'## Where the bit-packed model spends its time (ONNX Runtime profiler, '
              f'1 thread, {prof["runs"]} runs, {per_run_ms:.1f} ms per run; ops cover '
              f'{100 * prof["ops_share"]:.0f} %)', '',
              markdown_table(['op type', 'share', 'ms per run', 'calls per run'],
                             [(o['op_type'], f'{100 * o["share"]:.1f} %',
                               f'{o["total_us"] / prof["runs"] / 1e3:.2f}',
                               f'{o["calls"] / prof["runs"]:.0f}')
                              for o in prof['ops'] if o['share'] >= 0.001])]
    lines += ['', '## Summary (bit-packed auto vs each row; targets are reported, not asserted)',
              '']
    lines += [f'- `{k}`: {v:.2f}x' for k, v in summary.items()]
    return '\n'.join(lines) + '\n'


def detector_chart(result: dict, path: str):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    threads = sorted({r['threads'] for r in result['rows']})
    fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 5), squeeze=False)
    for ax, t in zip(axes[0], threads):
        rows = [r for r in result['rows'] if r['threads'] == t]
        ax.barh([r['impl'] for r in rows], [r['median_s'] * 1e3 for r in rows],
                color=['tab:green' if r['model'] == 'binary' else 'tab:gray' for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel('median ms per image')
        ax.set_title(f'{os.path.basename(result["config"])}, {t} thread(s)', fontsize=9)
        ax.tick_params(axis='y', labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    keyed = {}
    for r in records:
        keyed.setdefault((r['model'], r['name'], r['threads']), {})[r['impl']] = r
    rows = []
    for (model, name, threads), by_impl in keyed.items():
        any_r = next(iter(by_impl.values()))
        shape = f'{any_r["in_channels"]}x{any_r["size"]}² -> {any_r["out_channels"]}x{any_r["out_size"]}²'
        cells = []
        for impl in impls:
            r = by_impl.get(impl)
            cells.append('' if r is None else
                         f'{r["median_s"] * 1e3:.2f} ({r["speedup_vs_float"]:.1f}x, '
                         f'{r["gmacs_per_s"]:.0f})')
        rows.append([model, name, shape, any_r['count'], threads] + cells)
    lines.append(markdown_table(['model', 'layer', 'in -> out', 'count', 'threads'] + impls, rows))
    one = [k for k in keyed if k[2] == 1]
    if one:
        binary = [i for i in impls if i != 'ort_float_conv']
        lines += ['', '1 thread, speedup over float Conv from the CPU time of the computing thread '
                  '(insensitive to other processes on the machine):', '',
                  markdown_table(['model', 'layer'] + binary, [
                      [model, name] + [f'{keyed[(model, name, 1)][i]["cpu_speedup_vs_float"]:.1f}x'
                                       if i in keyed[(model, name, 1)] else '' for i in binary]
                      for model, name, _ in one])]
    lines += ['', '## Summary (targets are reported, not asserted)', '']
    for k, v in summary.items():
        lines.append(f'- `{k}`: {v:.2f}x')
    if model_records:
        lines += ['', '## Whole models', '', markdown_table(
            ['model', 'threads', 'impl', 'median ms'],
            [(r['model'], r['threads'], r['impl'],
              f'{r["size_bytes"] / 2**20:.2f} MiB' if 'size_bytes' in r
              else f'{r["median_s"] * 1e3:.2f}') for r in model_records])]
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
    parser.add_argument('--detector', nargs='+', metavar=('CONFIG', 'CHECKPOINT'),
                        help='whole-model mode instead of the layers: export CONFIG\'s detector '
                             'or segmentor (CHECKPOINT, else untrained) bit-packed + float twin '
                             'and time them, the float ResNet-18 baseline, their int8 twins and '
                             'OpenVINO (if installed) on real test images')
    parser.add_argument('--exported', nargs='+', metavar='ONNX',
                        help='with --detector: time these exports instead of exporting: '
                             'BINARY FLOAT_TWIN [FLOAT_R18]')
    parser.add_argument('--export-dir', help='with --detector: where the .onnx files go '
                        '(default: --out-dir)')
    parser.add_argument('--baseline', help='with --detector: the float ResNet-18 config '
                        '(default: configs/baselines/ by name; "none" skips it)')
    parser.add_argument('--baseline-checkpoint', help='weights of --baseline (default: untrained)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='with --detector: export size (default: the test pipeline\'s)')
    parser.add_argument('--images', type=int, default=8,
                        help='with --detector: test images cycled through the timed runs')
    parser.add_argument('--calibration-images', type=int, default=32,
                        help='with --detector: training images calibrating the int8 twins')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='with --detector: override settings of the config(s)')
    args = parser.parse_args(argv)
    if args.exported and not 2 <= len(args.exported) <= 3:
        parser.error('--exported takes BINARY FLOAT_TWIN [FLOAT_R18]')

    started = time.time()
    supported = library.supported_kernels()
    variants = args.variants or supported
    # 'auto' (not in the default list): the library's own choice, per layer for whole models
    missing = [v for v in variants if v not in supported + ['auto']]
    if missing:
        parser.error(f'this CPU cannot run kernel variant(s) {missing} (supported: {supported})')
    if args.detector:
        if args.variants is None:  # whole models: also what users get by default
            variants = supported + ['auto']
        return detector_main(args, argv, variants, started)
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
    meta = run_meta(args, argv, variants, started)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, 'benchmark.json'), 'w') as f:
        json.dump(dict(meta=meta, summary=summary, layers=records, models=model_records), f,
                  indent=1)
    with open(os.path.join(args.out_dir, 'benchmark.md'), 'w') as f:
        f.write(markdown(records, summary, meta, model_records))
    chart(records, os.path.join(args.out_dir, 'benchmark.png'))
    print('\n'.join(f'{k}: {v:.2f}x' for k, v in summary.items()))
    print(f'wrote {args.out_dir}/benchmark.{{json,md,png}} in {meta["wall_time_s"]:.0f} s')


def run_meta(args, argv, variants, started: float) -> dict:
    import onnxruntime as ort
    return dict(load_average=os.getloadavg(), command='python ' + ' '.join(
                    [os.path.relpath(__file__)] + sys.argv[1:] if argv is None
                    else ['tools/benchmark.py'] + argv),
                cpu=machine_description(), onnxruntime=ort.__version__,
                auto_kernel=library.selected_kernel('auto'), python=platform.python_version(),
                wall_time_s=time.time() - started, variants=list(variants),
                threads=args.threads, quick=args.quick)


def detector_main(args, argv, variants, started: float):
    """``--detector``: time the whole model against the engines, write json/md/png."""
    load_start = os.getloadavg()
    timing = (dict(min_time=0.0, min_runs=2, max_runs=2) if args.quick else
              dict(min_time=args.min_time, min_runs=args.min_runs, max_runs=args.max_runs))
    if args.quick:
        args.images, args.calibration_images = min(args.images, 2), min(args.calibration_images, 2)
    result = detector_benchmark(args, variants, timing)
    summary = detector_summary(result)
    meta = dict(run_meta(args, argv, variants, started), load_average_start=load_start)
    with open(os.path.join(args.out_dir, 'benchmark.json'), 'w') as f:
        json.dump(dict(meta=meta, summary=summary, detector=result), f, indent=1)
    with open(os.path.join(args.out_dir, 'benchmark.md'), 'w') as f:
        f.write(detector_markdown(result, summary, meta))
    detector_chart(result, os.path.join(args.out_dir, 'benchmark.png'))
    print('\n'.join(f'{k}: {v:.2f}x' for k, v in summary.items()))
    print(f'wrote {args.out_dir}/benchmark.{{json,md,png}} in {meta["wall_time_s"]:.0f} s')


if __name__ == '__main__':
    from bnn_tasks.cli import run_tool
    sys.exit(run_tool(main))
