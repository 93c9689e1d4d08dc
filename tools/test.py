#!/usr/bin/env python
"""Evaluate a detector (mmdet) or segmentor (mmseg) checkpoint; mmdet's test.py arguments.

    python tools/test.py CONFIG work_dirs/x/iter_6000.pth
    python tools/test.py CONFIG CKPT --out preds.pkl --show-dir vis/      # dump + draw
    python tools/test.py CONFIG model.onnx                                # ONNX Runtime

The task is read from the config's ``default_scope``. Metrics are logged and also written to
``<work_dir>/test_metrics.json``. ``--out``: detection -> a pickle of predictions
(mmdet's DumpDetResults); segmentation -> a folder of predicted label PNGs.
``--show-dir``: images with predicted boxes (detection) or the colour-coded predicted mask
beside the ground truth (segmentation). A checkpoint ending in ``.onnx`` (or
``--backend onnxruntime``) is run by ``bnn_tasks.deploy.runtime.run_onnx_test``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # the shared helpers in train.py

from train import (ToolError, add_common_args, build_runner, check_state_dict_matches,  # noqa
                   load_checkpoint_file, load_config, run_tool, task_of)


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


def enable_visualization(cfg, show_dir: str) -> None:
    """Turn on the task's visualization hook, writing into ``show_dir``."""
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise ToolError('--show-dir needs default_hooks.visualization in the config')
    hooks.visualization['draw'] = True
    os.makedirs(show_dir, exist_ok=True)
    # a fresh visualizer instance: mmengine reuses one by name across runners in a process
    cfg.visualizer['name'] = f'test_visualizer_{time.time_ns()}'
    if cfg.default_scope == 'mmdet':
        hooks.visualization['test_out_dir'] = osp.abspath(show_dir)
    else:
        # SegLocalVisualizer draws ground truth and prediction side by side
        hooks.visualization['interval'] = 1
        cfg.visualizer['save_dir'] = osp.abspath(show_dir)
        cfg.visualizer['alpha'] = 1.0  # the predicted mask in full colour, not blended


def add_output(cfg, out: str) -> None:
    if cfg.default_scope == 'mmdet':
        if not out.endswith(('.pkl', '.pickle')):
            raise ToolError(f'--out {out!r}: detection predictions are dumped to a .pkl file')
        evaluators = cfg.test_evaluator
        evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
        cfg.test_evaluator = evaluators + [dict(type='DumpDetResults', out_file_path=out)]
    else:
        os.makedirs(out, exist_ok=True)
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    from bnn_tasks.datasets.preflight import check_data
    check_data(cfg, splits=('test', ))
    if args.out:  # both backends score through cfg.test_evaluator, so both dump through it
        add_output(cfg, args.out)
    backend = args.backend or ('onnxruntime' if args.checkpoint.endswith('.onnx') else 'pytorch')
    if backend == 'onnxruntime':
        try:
            from bnn_tasks.deploy.runtime import run_onnx_test
        except ImportError as e:
            raise ToolError(f'ONNX Runtime testing needs bnn_tasks.deploy.runtime: {e}') from None
        if not osp.isfile(args.checkpoint):
            raise ToolError(f'ONNX model {args.checkpoint!r} does not exist')
        return run_onnx_test(cfg, args)

    ckpt = load_checkpoint_file(args.checkpoint)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    runner = build_runner(cfg)
    check_state_dict_matches(runner.model, ckpt, args.checkpoint)
    del ckpt
    runner.logger.info(f'task: {task_of(cfg)} ({cfg.default_scope})')
    metrics = runner.test()
    metrics = {k: (float(v) if isinstance(v, (int, float)) or hasattr(v, '__float__') else v)
               for k, v in (metrics or {}).items()}
    if runner.rank == 0:
        path = osp.join(cfg.work_dir, 'test_metrics.json')
        with open(path, 'w') as f:
            json.dump(metrics, f, indent=2, sort_keys=True)
        runner.logger.info(f'metrics written to {path}')
    return metrics


if __name__ == '__main__':
    sys.exit(run_tool(main))
