"""What every command-line tool shares: config loading, one-line errors, runner building.

Tools stay thin entry points: they parse arguments and call this module and the library.
Bad input (missing files, unknown ``--cfg-options`` keys, unusable checkpoints, dataset
problems) ends with one ``error:`` line and exit code 2; ``--debug`` shows the traceback.
"""
import argparse
import os
import os.path as osp
import sys
import warnings
from typing import Callable, Optional, Sequence

from .checkpoint import CheckpointError

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

EXIT_BAD_INPUT = 2
TASK_SCOPES = ('mmdet', 'mmseg')


class ToolError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """mmdet's shared arguments: --work-dir, --cfg-options, --launcher, --local-rank, --debug."""
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


def check_cfg_options(cfg, options: Optional[dict], config_path: str) -> None:
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


def load_config(config: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none', local_rank: int = 0):
    """Read ``config``, apply ``cfg_options`` and ``work_dir``; checks the task scope.

    Without a GPU the distributed backend is gloo (nccl, mmdet/mmseg's default, needs CUDA).
    """
    import bnn_tasks  # noqa: F401  (stack fixes first: CPU distributed init, checkpoints)
    from mmengine.config import Config
    if not osp.isfile(config):
        raise ToolError(f'config file {config!r} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        check_cfg_options(cfg, cfg_options, config)
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ToolError(f'{config}: default_scope is {scope!r}; expected one of '
                        f'{TASK_SCOPES} (inherit mmdet/mmseg default_runtime)')
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    import torch
    if not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        if launcher != 'none' and cfg.get('model_wrapper_cfg') is None:
            # mmengine passes device_ids=[LOCAL_RANK] to DDP, which only GPU modules accept
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)
    return cfg


def config_from_args(args):
    """:func:`load_config` with the arguments :func:`add_common_args` defines."""
    return load_config(args.config, args.cfg_options, args.work_dir, args.launcher,
                       args.local_rank)


def task_of(cfg) -> str:
    return 'detection' if cfg.default_scope == 'mmdet' else 'segmentation'


def build_runner(cfg):
    import bnn_tasks  # noqa: F401  (stack fixes + registrations even without custom_imports)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def run_tool(main: Callable, argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)``; user errors become one line on stderr and exit code 2."""
    from .datasets.errors import DatasetError
    debug = '--debug' in (sys.argv[1:] if argv is None else argv)
    try:
        main(argv)
        return 0
    except (ToolError, DatasetError, CheckpointError, FileNotFoundError) as e:
        if debug:
            raise
        # errors raised inside dataloader workers arrive wrapped: keep the original line
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        msg = lines[-1] if lines else type(e).__name__
        if msg.startswith(type(e).__name__ + ': '):
            msg = msg[len(type(e).__name__) + 2:]
        print(f'error: {msg}', file=sys.stderr)
        return EXIT_BAD_INPUT


def exit_process(code: int) -> None:
    """End a tool's process with ``code``.

    A worker of a multi-process run (``torch.distributed.run`` sets ``WORLD_SIZE``) leaves with
    ``os._exit`` once its logs and streams are flushed: its process group is already torn down
    (``bnn_tasks.jobs.train``), but the collective library's C++ threads and static objects are
    still destroyed during interpreter finalization, where a race can abort a process that has
    finished its work (SIGABRT, "terminate called without an active exception"; measured with a
    2-rank gloo script: 1 abort in 30 exits after destroy_process_group, none in 40 with this).
    """
    if int(os.environ.get('WORLD_SIZE', '1')) > 1:
        import logging
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
