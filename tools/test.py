#!/usr/bin/env python
"""Evaluate a detector (mmdet) or segmentor (mmseg) checkpoint; mmdet's test.py arguments.

    python tools/test.py CONFIG work_dirs/x/iter_6000.pth
    python tools/test.py CONFIG CKPT --out preds.pkl --show-dir vis/      # dump + draw
    python tools/test.py CONFIG model.onnx                                # ONNX Runtime

The task is read from the config's ``default_scope``. Metrics are logged and also written to
``<work_dir>/test_metrics.json`` (``test_metrics_onnx.json`` for ONNX Runtime), with the
test result (metrics, checkpoint, its training seed) in ``test_result.json``. ``--out``:
detection -> a pickle of predictions (mmdet's DumpDetResults); segmentation -> a folder of
predicted label PNGs. ``--show-dir``: images with predicted boxes (detection) or the
colour-coded predicted mask beside the ground truth (segmentation). A checkpoint ending in
``.onnx`` (or ``--backend onnxruntime``) is run by ``bnn_tasks.deploy.runtime``.
"""
import argparse
import os.path as osp
import sys

from bnn_tasks.cli import ToolError, add_common_args, config_from_args, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a bnn_tasks detector or segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (.pth, or .onnx for ONNX Runtime)')
    parser.add_argument('--out', help='detection: predictions .pkl; segmentation: folder of '
                        'predicted label maps')
    parser.add_argument('--show-dir', help='folder for images with drawn predictions')
    parser.add_argument('--backend', choices=['pytorch', 'onnxruntime'], default=None,
                        help='default: onnxruntime for .onnx checkpoints, else pytorch')
    parser.add_argument('--threads', type=int, default=1,
                        help='ONNX Runtime intra-op threads (onnxruntime backend)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from bnn_tasks import jobs
    cfg = config_from_args(args)
    backend = args.backend or ('onnxruntime' if args.checkpoint.endswith('.onnx') else 'pytorch')
    if backend == 'pytorch':
        jobs.prepare_test(cfg, args.out, args.show_dir)
        return jobs.test(cfg, args.config, args.checkpoint)['metrics']
    jobs.prepare_test(cfg, args.out)
    try:
        from bnn_tasks.deploy.runtime import run_onnx_test
    except ImportError as e:
        raise ToolError(f'ONNX Runtime testing needs bnn_tasks.deploy.runtime: {e}') from None
    if not osp.isfile(args.checkpoint):
        raise ToolError(f'ONNX model {args.checkpoint!r} does not exist')
    if args.show_dir:
        print('--show-dir is not supported by the ONNX Runtime backend; ignored',
              file=sys.stderr)
    metrics = run_onnx_test(cfg, args.checkpoint, threads=args.threads)
    return jobs.record_test(cfg, args.config, args.checkpoint, 'onnxruntime', metrics)['metrics']


if __name__ == '__main__':
    sys.exit(run_tool(main))
