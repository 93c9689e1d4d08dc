"""Export a bnn_tasks detector/segmentor to ONNX (bit-packed binary convs) and verify it.

    python tools/deploy.py CONFIG CHECKPOINT --out DIR [--shape H W] [--float] [--no-verify]
                                                      [--int8 N [--int8-full-range]]

Writes ``DIR/NAME.onnx`` (each binary conv one ``bnn_tasks::BinaryConv2d`` node with bit-packed
weights) and ``DIR/NAME_float.onnx`` (its full-precision twin: the same function with standard
ONNX Conv), prints their sizes and the max abs difference between ONNX Runtime and PyTorch on a
sample input (the first test image when the test set exists, else seeded noise), and writes
all of it to ``DIR/NAME.json``. ``--float`` writes only the float twin. Configs without binary
convs (full-precision baselines) export to a standard ``NAME.onnx``.

``--int8 N`` also writes ``DIR/NAME_int8.onnx``: the first export with its float ops (stem,
shortcuts, neck, heads, fcs) statically quantized to int8 by ONNX Runtime (QDQ, per channel,
calibrated on N training images); binary nodes keep their float inputs (``deploy/quantize.py``).
Weights use 7 of the 8 bits, so ONNX Runtime's int8 kernels cannot saturate on x86 CPUs
without VNNI (AVX2); ``--int8-full-range`` uses all 8, for files that only run on VNNI CPUs.
Score it like the others; int8 rounding moves the scores, so check before deploying it.

The ``.onnx`` files carry the test pipeline around the graph (resize, normalisation, class
names; ``deploy/export_record.py``) in their metadata, so ``deploy/runtime_lite.py`` runs them
with onnxruntime and numpy alone. Run the exported file on the config's test set with
``python tools/test.py CONFIG DIR/NAME.onnx`` (ONNX Runtime backend).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Export a bnn_tasks model to ONNX and verify it')
    p.add_argument('config', help='mmdet/mmseg config file')
    p.add_argument('checkpoint', help='checkpoint (.pth) of that config')
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                   help='export input size (default: the test pipeline Resize scale, padded '
                        'to the pad divisor)')
    p.add_argument('--float', action='store_true',
                   help='export only the full-precision twin (standard Conv of the signs)')
    p.add_argument('--name', help='base file name (default: the config name)')
    p.add_argument('--verify', dest='verify', action='store_true', default=True,
                   help='compare ONNX Runtime with PyTorch on a sample input (default)')
    p.add_argument('--no-verify', dest='verify', action='store_false')
    p.add_argument('--threads', type=int, default=1, help='ONNX Runtime threads for verify')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, xxx.yyy=value (e.g. the data_root the sample '
                        'input and --int8 calibration images come from)')
    p.add_argument('--int8', type=int, metavar='N', default=0,
                   help='also write NAME_int8.onnx: float ops in int8, calibrated on N '
                        'training images (ONNX Runtime static quantization)')
    p.add_argument('--int8-full-range', action='store_true',
                   help='8-bit int8 weights instead of 7-bit: finer, but only exact on CPUs '
                        'with VNNI (on AVX2 ONNX Runtime\'s int8 sums saturate)')
    args = p.parse_args(argv)
    if args.int8 < 0:
        p.error(f'--int8 takes a number of calibration images >= 1, got {args.int8}')
    if args.int8_full_range and not args.int8:
        p.error('--int8-full-range applies to the --int8 export: give --int8 N too')
    return args


def _sample_input(cfg, shape):
    from bnn_tasks.deploy.runtime import first_test_input
    sample = first_test_input(cfg, shape)
    if sample is None:
        return None, None, 'seeded N(0,1) noise (test set not readable)'
    return sample[0], sample[1], 'first test image'


def main(argv=None):
    args = parse_args(argv)
    from bnn_tasks.build import build_model, input_shape_of
    from bnn_tasks.checkpoint import load_checkpoint_strict
    from bnn_tasks.cli import load_config
    from bnn_tasks.deploy.export import compare_outputs, export_model
    from bnn_tasks.deploy.export_record import RECORD_KEY, pipeline_record
    from bnn_tasks.deploy.export_wrappers import model_kind
    from bnn_tasks.deploy.runtime import create_session
    from bnn_tasks.layers import BinaryConv2d

    cfg = load_config(args.config, args.cfg_options)
    shape = tuple(args.shape) if args.shape else input_shape_of(cfg)
    if shape is None:
        sys.exit('cannot infer the export shape from the test pipeline; pass --shape H W')
    model = build_model(cfg)
    load_checkpoint_strict(model, args.checkpoint)
    task = {'two_stage': 'detection', 'single_stage': 'detection',
            'segmentor': 'segmentation'}.get(model_kind(model))
    # the test pipeline around the graph, for runtime_lite (it needs no config)
    record = task and pipeline_record(cfg, task, getattr(model, 'dataset_meta', None))
    metadata = {RECORD_KEY: json.dumps(record)} if record else None
    name = args.name or osp.splitext(osp.basename(args.config))[0]
    os.makedirs(args.out, exist_ok=True)
    has_binary = any(isinstance(m, BinaryConv2d) for m in model.modules())
    example, valid_hw, sample_kind = _sample_input(cfg, shape)

    modes = ['float'] if args.float else (['binary', 'float'] if has_binary else ['float'])
    report = dict(config=args.config, checkpoint=args.checkpoint, shape=list(shape),
                  batch_size='dynamic' if task == 'segmentation' else 1, sample_input=sample_kind, pipeline=record, exports={})
    for mode in modes:
        suffix = '_float' if mode == 'float' and has_binary else ''
        path = osp.join(args.out, f'{name}{suffix}.onnx')
        t0 = time.time()
        result = export_model(model, path, shape, mode, example_input=example,
                              valid_hw=valid_hw, metadata=metadata)
        entry = dict(path=path, mode=mode, kind=result.kind, size_bytes=result.size,
                     binary_conv_nodes=result.num_binary_nodes, folded=result.folded,
                     inputs=list(result.input_names), outputs=list(result.output_names),
                     export_seconds=round(time.time() - t0, 2),
                     sign_margin=result.sign_margin)
        if args.verify:
            session = create_session(path, threads=args.threads)
            outs = session.run(None, result.feeds())
            entry['verify'] = compare_outputs(result.torch_outputs, outs, result.output_names)
        report['exports'][mode] = entry
        print(f'[{mode}] {path}: {result.size / 2**20:.2f} MiB, '
              f'{result.num_binary_nodes} bnn_tasks::BinaryConv2d nodes, folded {result.folded}')
        if args.verify and result.sign_margin != float('inf'):
            print(f'    sample input: {sample_kind}; smallest |x| at a binary conv input: '
                  f'{result.sign_margin:.3g}')
        for out_name, v in entry.get('verify', {}).items():
            close = v.get('fraction_close')
            close = '' if close is None else f', {100 * close:.2f}% of values within 1e-4'
            print(f'    verify {out_name}: torch {v["torch_shape"]} onnx {v["onnx_shape"]} '
                  f'max |ORT - PyTorch| = {v["max_abs_diff"]}{close}')
    if any(v.get('fraction_close', 1.0) < 1.0 for e in report['exports'].values()
           for v in e.get('verify', {}).values()):
        print('note: with a smallest |x| at binary conv inputs near float rounding (< 1e-5), '
              'ONNX Runtime and PyTorch may binarize such a value differently and a few '
              'outputs then differ by O(1) (common for untrained models on flat images; see '
              'docs/deploy.md, "Numerics"). Check a trained model with tools/test.py on the '
              '.onnx file.')
    if args.int8:
        report['exports']['int8'] = _int8_export(cfg, shape, report['exports'][modes[0]]['path'],
                                                 osp.join(args.out, f'{name}_int8.onnx'),
                                                 args.int8, not args.int8_full_range)
    if 'binary' in report['exports'] and 'float' in report['exports']:
        ratio = report['exports']['float']['size_bytes'] / report['exports']['binary'][
            'size_bytes']
        report['float_to_binary_size_ratio'] = round(ratio, 2)
        print(f'float twin / bit-packed size: {ratio:.1f}x')
    json_path = osp.join(args.out, f'{name}.json')
    with open(json_path, 'w') as f:
        json.dump(report, f, indent=2)
    print(f'report: {json_path}')
    return report


def _int8_export(cfg, shape, source: str, path: str, images: int, reduce_range: bool) -> dict:
    from bnn_tasks.deploy.dataset_feeds import as_feeds, dataset_inputs
    from bnn_tasks.deploy.export import file_size
    from bnn_tasks.deploy.quantize import int8_weight_bits, quantize_int8
    try:
        calibration = dataset_inputs(cfg, shape, images, split='train')
    except ValueError as err:
        sys.exit(f'error: --int8: {err}')
    if not calibration:
        sys.exit('error: --int8: the training set gave no calibration images (check the '
                 "config's train_dataloader data_root and ann_file)")
    t0 = time.time()
    quantize_int8(source, path, as_feeds(calibration, source), reduce_range=reduce_range)
    entry = dict(path=path, mode='int8', source=source, size_bytes=file_size(path),
                 calibration_images=len(calibration), weight_bits=int8_weight_bits(reduce_range),
                 export_seconds=round(time.time() - t0, 2))
    print(f'[int8] {path}: {entry["size_bytes"] / 2**20:.2f} MiB, float ops quantized from '
          f'{source} (calibrated on {len(calibration)} training images); score it with '
          f'tools/test.py')
    return entry


if __name__ == '__main__':
    from bnn_tasks.cli import run_tool
    sys.exit(run_tool(main))
