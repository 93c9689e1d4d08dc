#!/usr/bin/env python
"""Write a config's training samples with their ground-truth boxes (mmdet) or masks (mmseg).

    python tools/analysis_tools/browse_dataset.py configs/bireal/faster-rcnn_bireal18_fpn_digits.py \
        --output-dir work_dirs/browse --max-images 20
    python tools/analysis_tools/browse_dataset.py configs/bireal/fcn_bireal18-d8_digits.py \
        --output-dir work_dirs/browse_seg

Samples go through the training pipeline (what the model is trained on, augmentations
included) and are drawn by the config's visualizer, one JPEG per sample.
"""
import argparse
import sys

from bnn_tasks.cli import ToolError, load_config, run_tool


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Draw training samples with ground truth')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--output-dir', required=True, help='folder for the drawn images')
    parser.add_argument('--max-images', type=int, help='draw the first N samples (default all)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx.yyy=value')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.max_images is not None and args.max_images < 1:
        raise ToolError(f'--max-images must be >= 1, got {args.max_images}')
    cfg = load_config(args.config, args.cfg_options)
    from bnn_tasks.analysis.browse import browse_dataset
    from bnn_tasks.datasets.preflight import check_data
    check_data(cfg, splits=('train', ))
    written = browse_dataset(cfg, args.output_dir, args.max_images)
    print(f'wrote {len(written)} images to {args.output_dir}')


if __name__ == '__main__':
    sys.exit(run_tool(main))
