#!/usr/bin/env python
"""Linear probe of a segmentation backbone's dense features: is the class in every cell?

    python tools/analysis_tools/dense_probe.py CONFIG CHECKPOINT
    python tools/analysis_tools/dense_probe.py CONFIG CHECKPOINT --float-stage \
        --levels -1 -2 --scales 1 0.5 --json probe.json

CHECKPOINT is a backbone pretraining (tools/pretrain_backbone.py) or a whole trained model;
its ``backbone.`` weights are loaded into the backbone CONFIG builds (``--float-stage``: the
two-stage recipe's float stage, as pretrained with ``pretrain_backbone.py --float-stage``).
One linear classifier per (level, scale) is fitted to the foreground cells of the first
``--train-images`` training images (test pipeline, so no augmentation) and scored on the
first ``--val-images`` validation images (definitions: bnn_tasks/analysis/dense_probe.py).
"""
import argparse
import json
import sys

from bnn_tasks.cli import ToolError, load_config, run_tool


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description="Linear probe of a backbone's dense features")
    parser.add_argument('config', help='segmentation config (mmseg) whose backbone to probe')
    parser.add_argument('checkpoint', help='backbone pretraining or trained-model checkpoint')
    parser.add_argument('--float-stage', action='store_true',
                        help="probe the float stage of a binary config's two-stage recipe")
    parser.add_argument('--levels', type=int, nargs='+', default=[-1],
                        help='backbone outputs to probe (default -1, the last)')
    parser.add_argument('--scales', type=float, nargs='+', default=[1.0],
                        help='resize the test-pipeline images by these factors (default 1)')
    parser.add_argument('--train-images', type=int, default=400)
    parser.add_argument('--val-images', type=int, default=100)
    parser.add_argument('--json', metavar='OUT', help='also write the rows as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx.yyy=value')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    return parser.parse_args(argv)


def probe_config(cfg, args):
    """The config and float-stage choice -> backbone, sample sources, background index."""
    import copy

    from bnn_tasks.analysis.browse import build_split_dataset
    from bnn_tasks.build import build_backbone
    from bnn_tasks.datasets.preflight import check_data
    from bnn_tasks.engine.backbone_pretrain import InputNormalizer, load_backbone_checkpoint
    if args.float_stage:
        from bnn_tasks.engine.recipe import RecipeError, float_stage
        try:
            cfg = float_stage(cfg, args.config)
        except RecipeError as e:
            raise ToolError(f'--float-stage: {e}') from None
    # both splits through the test pipeline: whole images, no random crops or colour jitter
    cfg = copy.deepcopy(cfg)
    cfg.train_dataloader.dataset.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    backbone = build_backbone(cfg)
    try:
        load_backbone_checkpoint(backbone, args.checkpoint)
    except ValueError as e:
        raise ToolError(str(e)) from None
    check_data(cfg, splits=('train', 'val'))
    normalize = InputNormalizer(cfg)

    def source(split, count):
        dataset = build_split_dataset(cfg, split)

        def samples():
            for index in range(min(count, len(dataset))):
                item = dataset[index]
                image = item['inputs'].permute(1, 2, 0).numpy()[None]
                yield normalize(image)[0], item['data_samples'].gt_sem_seg.data[0]
        return dataset, samples

    train_set, train_samples = source('train', args.train_images)
    _, val_samples = source('val', args.val_images)
    classes = list(train_set.metainfo.get('classes') or [])
    background = classes.index('background') if 'background' in classes else None
    return backbone, train_samples, val_samples, background


def main(argv=None):
    args = parse_args(argv)
    if args.train_images < 1 or args.val_images < 1:
        raise ToolError('--train-images and --val-images must be >= 1')
    if any(s <= 0 for s in args.scales):
        raise ToolError(f'--scales must be positive, got {args.scales}')
    cfg = load_config(args.config, args.cfg_options)
    if cfg.default_scope != 'mmseg':
        raise ToolError(f'{args.config} is a {cfg.default_scope} config: the dense probe needs '
                        'the segmentation masks of an mmseg config')
    import torch

    from bnn_tasks.analysis.dense_probe import format_results, probe_backbone
    backbone, train_samples, val_samples, background = probe_config(cfg, args)
    backbone.eval()  # eval mode before any forward: BN statistics stay the checkpoint's
    with torch.no_grad():
        outputs = len(backbone(torch.zeros(1, 3, 32, 32)))
    bad = [level for level in args.levels if not -outputs <= level < outputs]
    if bad:
        raise ToolError(f'--levels {bad}: the backbone has {outputs} outputs')
    try:
        results = probe_backbone(backbone, train_samples, val_samples, args.levels,
                                 args.scales, background)
    except ValueError as e:
        raise ToolError(f'{args.config}: {e}') from None
    stage = ' (float stage)' if args.float_stage else ''
    print(f'{args.config}{stage}, {args.checkpoint}')
    print(format_results(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(config=args.config, float_stage=args.float_stage,
                           checkpoint=args.checkpoint, train_images=args.train_images,
                           val_images=args.val_images,
                           results=[r.as_dict() for r in results]), f, indent=1)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    sys.exit(run_tool(main))
