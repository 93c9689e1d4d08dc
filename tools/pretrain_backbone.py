#!/usr/bin/env python
"""Pretrain a config's backbone as a classifier of the dataset's objects (digits).

The stand-in for ImageNet pretraining, which cannot be downloaded here: the backbone exactly as
CONFIG builds it, trained on crops around the training split's annotated objects, then saved
(backbone weights only) where CONFIG's ``load_from`` points, so plain ``tools/train.py CONFIG``
starts from it:

    python tools/pretrain_backbone.py configs/group_net/fcn_groupnet18-d8_digits_pretrained.py \\
        --minutes 10
    python tools/train.py configs/group_net/fcn_groupnet18-d8_digits_pretrained.py

``--float-stage`` pretrains the recipe's float stage of a binary config instead (float weights,
clip activations: what ``tools/train.py CONFIG --two-stage`` starts from; same parameter names).
``--amp`` trains in bfloat16 autocast as ``tools/train.py --amp`` does.

The schedule (warm-up, cosine decay) is fitted to ``--minutes`` after timing the first steps,
and refitted at 10 % and 50 % of it from the step time since the previous fit.
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys

from bnn_tasks.cli import ToolError, config_from_args, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='detection or segmentation config whose backbone to pretrain')
    p.add_argument('--minutes', type=float, default=None,
                   help='wall-clock training budget (the schedule is fitted to it)')
    p.add_argument('--max-iters', type=int, default=None,
                   help='at most (without --minutes: exactly) this many iterations')
    p.add_argument('--out', default=None,
                   help="checkpoint to write (default: the config's load_from)")
    p.add_argument('--data-root', default=None,
                   help="dataset with annotations/instances_{train,val}.json (default: the "
                   "config's train_dataloader.dataset.data_root)")
    p.add_argument('--float-stage', action='store_true',
                   help='pretrain the float stage of the two-stage recipe (binary configs: '
                   'float weights, clip activations), the network --two-stage training starts '
                   'from')
    p.add_argument('--amp', action='store_true',
                   help='bfloat16 autocast, as tools/train.py --amp (CPUs with AVX512-BF16 or '
                   'AMX-BF16)')
    p.add_argument('--batch-size', type=int, default=64)
    # digits are 8x8 scans: 32 px crops keep their detail and cost a quarter of 64 px ones
    # (measured, float ResNet-18, 4 min: 90% validation accuracy at 32 px, 28% at 64 px)
    p.add_argument('--crop-size', type=int, default=32)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', default=None, help=argparse.SUPPRESS)
    p.add_argument('--launcher', default='none', help=argparse.SUPPRESS)
    p.add_argument('--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument('--work-dir', default=None, help=argparse.SUPPRESS)
    p.add_argument('--debug', action='store_true', help='full tracebacks')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = config_from_args(args)
    out = args.out or cfg.get('load_from')
    if not out:
        raise ToolError(f'{args.config} has no load_from: give --out')
    data_root = args.data_root or cfg.train_dataloader.dataset.get('data_root')
    if not data_root or not osp.isdir(data_root):
        raise ToolError(f'data root {data_root!r} does not exist '
                        '(make it with tools/make_digits_dataset.py, or give --data-root)')
    if args.minutes is None and args.max_iters is None:
        raise ToolError('give --minutes, --max-iters or both')
    if (args.minutes is not None and args.minutes <= 0) or \
            (args.max_iters is not None and args.max_iters < 1):
        raise ToolError('--minutes and --max-iters must be positive')
    from bnn_tasks.datasets.digit_crops import DigitCrops
    from bnn_tasks.engine.backbone_pretrain import pretrain_backbone
    if args.float_stage:
        from bnn_tasks.engine.recipe import RecipeError, float_stage
        try:
            cfg = float_stage(cfg, args.config)
        except RecipeError as e:
            raise ToolError(f'--float-stage: {e}') from None
    if args.amp:
        from bnn_tasks.jobs import enable_amp
        enable_amp(cfg, args.config)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
    train = DigitCrops(data_root, 'train', crop_size=args.crop_size)
    val = DigitCrops(data_root, 'val', crop_size=args.crop_size)
    if train.classes != val.classes:
        raise ToolError(f'{data_root}: train and val categories differ')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    summary = pretrain_backbone(cfg, train, val, out, args.minutes, max_iters=args.max_iters,
                                batch_size=args.batch_size, seed=args.seed)
    summary.update(config=args.config, checkpoint=out, float_stage=args.float_stage, amp=args.amp)
    with open(osp.splitext(out)[0] + '.json', 'w') as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))


if __name__ == '__main__':
    sys.exit(run_tool(main))
