#!/usr/bin/env python
"""Train a detector (mmdet) or segmentor (mmseg) from a config; mmdet's train.py arguments.

    python tools/train.py configs/bireal/faster-rcnn_bireal18_fpn_digits.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume          # last checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/iter_500.pth        # a given one
    python tools/train.py CONFIG --max-iters 1000 --budget-minutes 25     # budgeted run
    python tools/train.py CONFIG --max-iters 1000 --budget-minutes 25 --refit-to-budget
    bash tools/dist_train.sh CONFIG 2                                     # 2 processes, gloo

The task is read from the config's ``default_scope`` (``mmdet`` or ``mmseg``). Bad input
(missing data, malformed annotations, unknown ``--cfg-options`` keys, incompatible checkpoints)
ends with one ``error:`` line and exit code 2; ``--debug`` shows the traceback instead.
This module also holds the helpers ``tools/test.py`` shares.
"""
import argparse
import logging
import os
import os.path as osp
import sys
import warnings

# a checkout works without installing; an installed bnn_tasks is used the same way
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

EXIT_BAD_INPUT = 2
TASK_SCOPES = ('mmdet', 'mmseg')


class ToolError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


# ------------------------------------------------------------------------- shared helpers
def add_common_args(parser: argparse.ArgumentParser) -> None:
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, xxx.yyy=value; every key must exist in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--debug', action='store_true',
                        help='show full tracebacks instead of one-line errors')


def _missing_key(cfg, dotted: str):
    """The first missing prefix of ``dotted`` in ``cfg`` (dicts and list indices), or None."""
    node = getattr(cfg, '_cfg_dict', cfg)  # mmengine Config wraps a ConfigDict (a dict)
    parts = dotted.split('.')
    for i, part in enumerate(parts):
        if isinstance(node, (list, tuple)):
            if not part.lstrip('-').isdigit() or not -len(node) <= int(part) < len(node):
                return '.'.join(parts[:i + 1])
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                return '.'.join(parts[:i + 1])
            node = node[part]
        else:
            return '.'.join(parts[:i + 1])
    return None


def check_cfg_options(cfg, options: dict, config_path: str) -> None:
    """Every ``--cfg-options`` key must already exist: a typo would otherwise be ignored."""
    for key in options or {}:
        missing = _missing_key(cfg, key)
        if missing is not None:
            parent = missing.rpartition('.')[0]
            node = getattr(cfg, '_cfg_dict', cfg)
            for part in parent.split('.') if parent else []:
                node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
            hint = ''
            if isinstance(node, dict):
                hint = f'; keys there: {", ".join(sorted(map(str, node.keys()))[:12])}'
            raise ToolError(f'--cfg-options key {key!r}: {missing!r} does not exist in '
                            f'{config_path}{hint}')


def load_config(args):
    """Read the config, apply ``--cfg-options`` and ``--work-dir``; checks the task scope."""
    import bnn_tasks  # noqa: F401  (stack fixes first: CPU distributed init, checkpoints)
    from mmengine.config import Config
    if not osp.isfile(args.config):
        raise ToolError(f'config file {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options, args.config)
        cfg.merge_from_dict(args.cfg_options)
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ToolError(f'{args.config}: default_scope is {scope!r}; expected one of '
                        f'{TASK_SCOPES} (inherit mmdet/mmseg default_runtime)')
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    # gloo whenever there is no GPU: nccl (mmdet/mmseg's default) only runs on CUDA
    import torch
    if not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        if args.launcher != 'none' and cfg.get('model_wrapper_cfg') is None:
            # mmengine passes device_ids=[LOCAL_RANK] to DDP, which only GPU modules accept
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return cfg


def task_of(cfg) -> str:
    return 'detection' if cfg.default_scope == 'mmdet' else 'segmentation'


def build_runner(cfg):
    import bnn_tasks  # noqa: F401  (stack fixes + registrations even without custom_imports)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def load_checkpoint_file(path: str, what: str = 'checkpoint') -> dict:
    """Load a checkpoint (weights-only, see bnn_tasks.compat) or raise a clear ToolError."""
    import pickle
    import zipfile

    import torch
    import bnn_tasks.compat  # noqa: F401  (allow-lists the types mmengine checkpoints hold)
    if not osp.isfile(path):
        raise ToolError(f'{what} {path!r} does not exist')
    try:
        ckpt = torch.load(path, map_location='cpu')
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError,
            OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ToolError(f'{what} {path!r} cannot be read (truncated or not a PyTorch '
                        f'checkpoint): {first[:200]}') from None
    if not isinstance(ckpt, dict):
        raise ToolError(f'{what} {path!r} holds a {type(ckpt).__name__}, not a checkpoint dict')
    return ckpt


def check_state_dict_matches(model, ckpt: dict, path: str) -> None:
    """Refuse a checkpoint of another architecture, naming mismatched keys and shapes.

    One checker for training, testing and export (``bnn_tasks.deploy.model_loading``).
    """
    from bnn_tasks.deploy.model_loading import (CheckpointMismatchError, check_state_dict,
                                                state_dict_of)
    try:
        check_state_dict(model, state_dict_of(ckpt), source=f'checkpoint {path!r}')
    except CheckpointMismatchError as e:
        raise ToolError(str(e)) from None


def run_tool(main, argv=None) -> int:
    """Run ``main(argv)``; user errors become one line on stderr and exit code 2."""
    from bnn_tasks.datasets.errors import DatasetError
    debug = '--debug' in (sys.argv[1:] if argv is None else argv)
    try:
        main(argv)
        return 0
    except (ToolError, DatasetError, FileNotFoundError) as e:
        if debug:
            raise
        # errors raised inside dataloader workers arrive wrapped: keep the original line
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        msg = lines[-1] if lines else type(e).__name__
        if msg.startswith(type(e).__name__ + ': '):
            msg = msg[len(type(e).__name__) + 2:]
        print(f'error: {msg}', file=sys.stderr)
        return EXIT_BAD_INPUT


# ------------------------------------------------------------------------------- training
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a bnn_tasks detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or (no value) from the latest checkpoint '
        'in the work dir')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size (mmdet configs)')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip validation during training')
    parser.add_argument('--max-iters', type=int,
                        help='train this many iterations: the warm-up and decay of the '
                        "config's schedule are fitted to them (not just cut off)")
    parser.add_argument('--val-interval', type=int,
                        help='with --max-iters: validate every N iterations (learning curves); '
                        '0: no validation inside training')
    parser.add_argument('--budget-minutes', type=float,
                        help='stop after this much wall-clock training time; the last '
                        'iteration is checkpointed')
    parser.add_argument('--refit-to-budget', action='store_true',
                        help='with --budget-minutes: once the step time is measured (at 10%% '
                        'and 50%% of the budget), stretch or shrink the rest of the schedule '
                        'so that it ends with the budget (--max-iters is then only the first '
                        'guess)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.refit_to_budget and args.budget_minutes is None:
        raise ToolError('--refit-to-budget needs --budget-minutes')
    cfg = load_config(args)
    from bnn_tasks.datasets.preflight import check_data
    check_data(cfg, splits=('train', ) if args.no_validate else ('train', 'val'))
    if args.max_iters is not None or args.val_interval is not None:
        from bnn_tasks.engine import fit_schedule
        if args.max_iters is None:
            raise ToolError('--val-interval needs --max-iters')
        try:
            fit_schedule(cfg, args.max_iters, args.val_interval)
        except ValueError as e:
            raise ToolError(f'{args.config}: {e}') from None
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        if cfg.get('train_cfg'):
            cfg.train_cfg.pop('val_interval', None)
            cfg.train_cfg['val_begin'] = 10**9  # never
    if args.budget_minutes is not None:
        from bnn_tasks.engine import add_time_budget
        try:
            add_time_budget(cfg, args.budget_minutes, refit=args.refit_to_budget)
        except ValueError as e:
            raise ToolError(f'--budget-minutes: {e}') from None
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ToolError(f'{args.config} has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    resume_from = None
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
        last = osp.join(cfg.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                resume_from = f.read().strip()
        else:
            logging.getLogger(__name__).warning(
                f'--resume: no checkpoint in {cfg.work_dir}; training from scratch')
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
        resume_from = args.resume
    load_from = None
    if args.resume is None and cfg.get('load_from'):
        # weights only (two-stage recipe, pretrained backbone): must be readable
        load_from = load_checkpoint_file(cfg.load_from, 'load_from checkpoint')
    runner = build_runner(cfg)
    if load_from is not None and 'backbone_pretrain' in (load_from.get('meta') or {}):
        # mmengine loads load_from non-strictly: a backbone from another config would be
        # skipped with a warning, and the run would silently train from scratch
        from bnn_tasks.engine.backbone_pretrain import check_backbone_checkpoint
        try:
            check_backbone_checkpoint(runner.model, load_from['state_dict'], cfg.load_from)
        except ValueError as e:
            raise ToolError(str(e)) from None
    runner.logger.info(f'task: {task_of(cfg)} ({cfg.default_scope}), '
                       f'dist backend: {cfg.env_cfg.dist_cfg.backend}')
    if resume_from:  # resuming needs the exact same architecture
        check_state_dict_matches(runner.model, load_checkpoint_file(resume_from),
                                 resume_from)
    runner.train()


if __name__ == '__main__':
    sys.exit(run_tool(main))
