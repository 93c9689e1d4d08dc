#!/usr/bin/env python
"""Training-step cost of configs, timed round-robin in one process on real training images.

    python tools/analysis_tools/train_step_cost.py \
        configs/baselines/fcn_r18-d8_digits.py configs/group_net/fcn_groupnet18-d8_digits.py \
        configs/group_net/fcn_groupnet18-k2-d8_digits.py --float-stage --json step_cost.json

Ratios are CPU seconds per step over the first config's (``bnn_tasks.analysis.step_cost``).
``--float-stage`` times binary configs as the two-stage recipe's first stage (float weights,
clip activations); the second stage's step is the config itself. ``--binarize-warmup P`` also
times each config as in the binarization warm-up (``tools/train.py --binarize-warmup``), its
binarizers blended at progress P. ``--threads`` (default 1)
sets torch's intra-op threads, so that a second core left idle keeps the timing steady.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys

from bnn_tasks.cli import ToolError, check_cfg_options, run_tool


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Time training steps of configs, round-robin')
    parser.add_argument('configs', nargs='+', help='config files; ratios are to the first')
    parser.add_argument('--float-stage', action='store_true',
                        help='time binary configs as the two-stage recipe\'s float stage')
    parser.add_argument('--amp', action='store_true',
                        help='time every config in float32 and with bfloat16 autocast '
                        '(tools/train.py --amp; CPUs with bfloat16 in hardware only)')
    parser.add_argument('--binarize-warmup', type=float, metavar='PROGRESS',
                        help='also time each config with its binarizers blended from the float '
                        'stage at this progress (0-1), as in the binarization warm-up')
    parser.add_argument('--batch-size', type=int,
                        help="images per step (default: each config's train_dataloader)")
    parser.add_argument('--rounds', type=int, default=3, help='turns of the round robin')
    parser.add_argument('--steps', type=int, default=2, help='timed steps per config per turn')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads')
    parser.add_argument('--json', metavar='OUT', help='also write the costs as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override keys of every config, xxx.yyy=value')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    return parser.parse_args(argv)


def load_config(path: str, args):
    """``(cfg, label)``: the config to time and the name its row gets."""
    from mmengine.config import Config

    from bnn_tasks.engine.recipe import RecipeError, check_binary, float_stage
    if not osp.isfile(path):
        raise ToolError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options, path)
        cfg.merge_from_dict(args.cfg_options)
    for key in ('model', 'optim_wrapper', 'train_dataloader'):
        if key not in cfg:
            raise ToolError(f'{path} has no {key}: not a training config')
    label = osp.basename(path)[:-3]
    if args.float_stage:
        try:
            check_binary(cfg, path)
        except RecipeError:
            return cfg, label  # a float config is its own float stage
        return float_stage(cfg, path), f'{label} (float stage)'
    return cfg, label


def precision_variants(cfg, name: str, path: str, amp: bool) -> list:
    """``[(cfg, label)]`` to time: the config, and with ``amp`` its bfloat16-autocast twin."""
    if not amp:
        return [(cfg, name)]
    from bnn_tasks.jobs import enable_amp
    mixed = copy.deepcopy(cfg)
    enable_amp(mixed, path)
    return [(cfg, name), (mixed, f'{name}, bf16 autocast')]


def warmup_variants(variants: list, progress) -> list:
    """``[(cfg, label, prepare_model)]``: each variant as it is and, with ``progress``, in the
    binarization warm-up's state at that progress."""
    plain = [(cfg, label, None) for cfg, label in variants]
    if progress is None:
        return plain
    if not 0 <= progress < 1:
        raise ToolError(f'--binarize-warmup is a progress in [0, 1), got {progress}')
    from bnn_tasks.engine.binarization_warmup_hook import wrap_binarizers

    def blend(model):
        for _, _, blended in wrap_binarizers(model):
            blended.progress = progress
    return plain + [(cfg, f'{label}, binarization warm-up at {progress:g}', blend)
                    for cfg, label in variants]


def main(argv=None):
    args = parse_args(argv)
    if args.threads < 1:
        raise ToolError(f'--threads must be >= 1, got {args.threads}')
    import torch

    from bnn_tasks.analysis.step_cost import build_train_step, format_costs, time_round_robin
    torch.set_num_threads(args.threads)
    steps, batch_sizes = {}, {}
    for path in args.configs:
        cfg, name = load_config(path, args)
        if name in steps:
            raise ToolError(f'{path} is given twice')
        batch = args.batch_size or cfg.train_dataloader.batch_size
        variants = precision_variants(cfg, name, path, args.amp)
        for variant, label, prepare in warmup_variants(variants, args.binarize_warmup):
            try:
                steps[label] = build_train_step(variant, batch, prepare_model=prepare)
            except ValueError as e:
                raise ToolError(f'{path}: {e}') from None
            batch_sizes[label] = batch
    try:
        costs = time_round_robin(steps, batch_sizes, args.rounds, args.steps)
    except ValueError as e:
        raise ToolError(str(e)) from None
    from bnn_tasks.machine import machine_description
    machine = machine_description()
    print(f'CPU: {machine}, {args.threads} thread(s); medians of {args.rounds} turns of '
          f'{args.steps} steps')
    print(format_costs(costs))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(cpu=machine, threads=args.threads, rounds=args.rounds,
                           steps=args.steps, float_stage=args.float_stage, amp=args.amp,
                           configs=args.configs,
                           costs=[c.__dict__ for c in costs]), f, indent=1)
        print(f'JSON: {args.json}')


if __name__ == '__main__':
    sys.exit(run_tool(main))
