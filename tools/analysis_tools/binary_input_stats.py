#!/usr/bin/env python
"""What each binary layer's activation binarizer is fed, on the config's test images.

    python tools/analysis_tools/binary_input_stats.py CONFIG CHECKPOINT
    python tools/analysis_tools/binary_input_stats.py CONFIG CHECKPOINT --num-images 16 \
        --json stats.json

Per binary layer: the share of its inputs beyond the binarizer's gradient bound (|x| > 1 for
sign's STE, ApproxSign and the float stage's hardtanh: no gradient flows back there), the
input's spread and the share that binarizes to +1 (definitions: bnn_tasks/analysis/
binary_inputs.py). Without CHECKPOINT the model's initialisation is measured. Works for any
config with binary layers, the float stage of the two-stage recipe included (its
stage1_float/CONFIG.py).
"""
import argparse
import json
import os.path as osp
import sys

from bnn_tasks.cli import ToolError, load_config, run_tool


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description="Statistics of binary layers' inputs")
    parser.add_argument('config', help='detector or segmentor config with binary layers')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: the initialisation)')
    parser.add_argument('--num-images', type=int, default=8,
                        help='test images to run (default 8)')
    parser.add_argument('--json', metavar='OUT', help='also write the rows as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx.yyy=value')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    return parser.parse_args(argv)


def forward_on_images(model, dataset, num_images: int):
    """``run()``: the model's tensor-mode forward on the first ``num_images`` test samples,
    one at a time (detection images may differ in size), through its data preprocessor."""
    def run():
        for index in range(num_images):
            item = dataset[index]
            data = model.data_preprocessor(dict(inputs=[item['inputs']],
                                                data_samples=[item['data_samples']]), False)
            model(data['inputs'], data['data_samples'], mode='tensor')
    return run


def main(argv=None):
    args = parse_args(argv)
    if args.num_images < 1:
        raise ToolError(f'--num-images must be >= 1, got {args.num_images}')
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise ToolError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_config(args.config, args.cfg_options)
    import torch

    from bnn_tasks.analysis.binary_inputs import binary_input_stats, format_stats
    from bnn_tasks.analysis.browse import build_split_dataset
    from bnn_tasks.build import build_model
    from bnn_tasks.checkpoint import load_checkpoint_strict
    from bnn_tasks.datasets.preflight import check_data
    check_data(cfg, splits=('test', ))
    dataset = build_split_dataset(cfg, 'test')
    images = min(args.num_images, len(dataset))
    torch.manual_seed(0)  # an unloaded model's initialisation
    model = build_model(cfg)
    if args.checkpoint:
        load_checkpoint_strict(model, args.checkpoint)
    try:
        stats = binary_input_stats(model, forward_on_images(model, dataset, images))
    except ValueError as e:
        raise ToolError(f'{args.config}: {e}') from None
    print(f'{args.config}, {args.checkpoint or "initialisation"}, {images} test images')
    print(format_stats(stats))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint,
                           images=images,
                           layers=[s.as_dict() for s in stats]), f, indent=1)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    sys.exit(run_tool(main))
