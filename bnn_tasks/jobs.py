"""Training and testing as library calls, each leaving a documented result file.

``tools/train.py`` and ``tools/test.py`` are thin command lines over :func:`train` and
:func:`test`; the orchestrators (the main job, the results table) run those tools and read
what they did with :func:`read_result`, never by parsing file names:

``<work_dir>/train_result.json``
    ``config``, ``work_dir``, ``checkpoint`` (the last one written), ``iterations``,
    ``seed``, ``train_minutes`` (wall clock of ``runner.train()``), ``time_budget`` (the
    budget hook's record when the run had one, else null).
``<work_dir>/test_result.json`` (PyTorch), ``<work_dir>/test_result_onnx.json`` (ONNX Runtime)
    ``config``, ``checkpoint``, ``backend``, ``seed`` (the trained checkpoint's, when known),
    ``metrics``. The metrics alone also go to ``test_metrics.json`` / ``test_metrics_onnx.json``
    (mmdet's habit).
"""
import json
import logging
import os.path as osp
import time
from typing import Optional

from .checkpoint import (CheckpointError, check_state_dict, checkpoint_meta, latest_checkpoint,
                         pointed_checkpoint, read_checkpoint, state_dict_of, write_atomically)
from .cli import ToolError, build_runner, task_of

RESULT_FILES = {'train': 'train_result.json', 'test': 'test_result.json',
                'test_onnx': 'test_result_onnx.json'}


def write_result(work_dir: str, kind: str, result: dict) -> str:
    path = osp.join(work_dir, RESULT_FILES[kind])
    write_atomically(path, json.dumps(result, indent=1, sort_keys=True))
    return path


def read_result(work_dir: str, kind: str) -> dict:
    """The result a train/test job recorded in ``work_dir``; a clear error when absent."""
    path = osp.join(work_dir, RESULT_FILES[kind])
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: did the {kind} job in {work_dir} '
                                'finish?')
    with open(path) as f:
        return json.load(f)


def _checked(path: str, what: str) -> dict:
    try:
        return read_checkpoint(path, what)
    except CheckpointError as e:
        raise ToolError(str(e)) from None


def check_state_dict_matches(model, ckpt: dict, path: str) -> None:
    """Refuse a checkpoint of another architecture (a ToolError naming keys and shapes)."""
    try:
        check_state_dict(model, state_dict_of(ckpt), source=f'checkpoint {path!r}')
    except CheckpointError as e:
        raise ToolError(str(e)) from None


def set_randomness(cfg, seed: Optional[int] = None, deterministic: Optional[bool] = None):
    """``seed``/``deterministic`` into mmengine's ``randomness`` config (None: keep)."""
    if seed is None and deterministic is None:
        return cfg
    randomness = dict(cfg.get('randomness') or {})
    randomness.setdefault('seed', None)  # mmengine draws one (and records it) when None
    if seed is not None:
        randomness['seed'] = int(seed)
    if deterministic is not None:
        randomness['deterministic'] = bool(deterministic)
    cfg.randomness = randomness
    return cfg


def prepare_training(cfg, config_path: str, max_iters: Optional[int] = None,
                     val_interval: Optional[int] = None, budget_minutes: Optional[float] = None,
                     refit_to_budget: bool = False, no_validate: bool = False,
                     auto_scale_lr: bool = False, seed: Optional[int] = None,
                     deterministic: Optional[bool] = None):
    """Apply ``tools/train.py``'s options to ``cfg`` (in place), checking the data first."""
    from .datasets.preflight import check_data
    from .engine import add_time_budget, fit_schedule
    if refit_to_budget and budget_minutes is None:
        raise ToolError('--refit-to-budget needs --budget-minutes')
    if val_interval is not None and max_iters is None:
        raise ToolError('--val-interval needs --max-iters')
    check_data(cfg, splits=('train', ) if no_validate else ('train', 'val'))
    if max_iters is not None:
        try:
            fit_schedule(cfg, max_iters, val_interval)
        except ValueError as e:
            raise ToolError(f'{config_path}: {e}') from None
    if no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        if cfg.get('train_cfg'):
            cfg.train_cfg.pop('val_interval', None)
            cfg.train_cfg['val_begin'] = 10**9  # never
    if budget_minutes is not None:
        try:
            add_time_budget(cfg, budget_minutes, refit=refit_to_budget)
        except ValueError as e:
            raise ToolError(f'--budget-minutes: {e}') from None
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ToolError(f'{config_path} has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    set_randomness(cfg, seed, deterministic)
    return cfg


def _resume_target(cfg, resume: str):
    """(path, checkpoint) to resume from; ``resume='auto'``: the work dir's newest readable."""
    log = logging.getLogger('bnn_tasks')
    if resume != 'auto':
        return resume, _checked(resume, 'checkpoint')
    path, ckpt = latest_checkpoint(cfg.work_dir, warn=lambda m: log.warning(f'--resume: {m}'))
    if path is None:
        log.warning(f'--resume: no readable checkpoint in {cfg.work_dir}; training from '
                    'scratch')
    return path, ckpt


def train(cfg, config_path: str, resume: Optional[str] = None) -> dict:
    """Train the (already prepared) ``cfg``; returns and records the train result.

    ``resume``: a checkpoint path, ``'auto'`` (the work dir's newest readable checkpoint; an
    unreadable one is skipped with a warning naming it) or None.
    """
    cfg.setdefault('custom_hooks', [])
    if not any(h.get('type') == 'RandomStateHook' for h in cfg.custom_hooks):
        cfg.custom_hooks.append(dict(type='RandomStateHook'))
    resume_from = resume_ckpt = None
    if resume is not None:
        resume_from, resume_ckpt = _resume_target(cfg, resume)
        cfg.resume, cfg.load_from = resume_from is not None, resume_from
        seed = checkpoint_meta(resume_ckpt or {}).get('seed')
        if seed is not None:  # the sampler is built before mmengine reads the seed back
            set_randomness(cfg, seed=seed)
    load_from = None
    if resume is None and cfg.get('load_from'):
        # weights only (two-stage recipe, pretrained backbone): must be readable
        load_from = _checked(cfg.load_from, 'load_from checkpoint')
    runner = build_runner(cfg)
    if load_from is not None and 'backbone_pretrain' in checkpoint_meta(load_from):
        # mmengine loads load_from non-strictly: a backbone from another config would be
        # skipped with a warning, and the run would silently train from scratch
        from .engine.backbone_pretrain import check_backbone_checkpoint
        try:
            check_backbone_checkpoint(runner.model, load_from['state_dict'], cfg.load_from)
        except ValueError as e:
            raise ToolError(str(e)) from None
    del load_from
    runner.logger.info(f'task: {task_of(cfg)} ({cfg.default_scope}), '
                       f'dist backend: {cfg.env_cfg.dist_cfg.backend}, seed: {runner.seed}')
    if resume_ckpt is not None:  # resuming needs the exact same architecture
        check_state_dict_matches(runner.model, resume_ckpt, resume_from)
    del resume_ckpt
    start = time.monotonic()
    try:
        runner.train()
    except BaseException:
        _close_distributed(wait_for_peers=False)  # a peer may be gone: no barrier
        raise
    _close_distributed(wait_for_peers=True)
    result = dict(config=config_path, work_dir=osp.abspath(cfg.work_dir), seed=runner.seed,
                  iterations=runner.iter, train_minutes=round((time.monotonic() - start) / 60, 3),
                  checkpoint=pointed_checkpoint(cfg.work_dir),
                  time_budget=_budget_record(cfg.work_dir))
    if runner.rank == 0:
        write_result(cfg.work_dir, 'train', result)
    return result


def _budget_record(work_dir: str) -> Optional[dict]:
    path = osp.join(work_dir, 'time_budget.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _close_distributed(wait_for_peers: bool) -> None:
    """Tear the process group down while the interpreter is still fully alive.

    Left to interpreter shutdown, gloo's worker threads still hold work objects with tensors;
    destroying those during finalization needs the GIL, which is already gone, and the process
    may abort (``terminate called without an active exception``, SIGABRT; seen in about one
    2-process run in ten). ``wait_for_peers`` first lets every rank finish
    its last collective, so none tears down a group a peer is still using.
    """
    import torch.distributed as torch_dist
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    if wait_for_peers:
        torch_dist.barrier()
    torch_dist.destroy_process_group()


# ------------------------------------------------------------------------------------ testing
def enable_visualization(cfg, show_dir: str) -> None:
    """Turn on the task's visualization hook, writing into ``show_dir``."""
    import os
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
    """Dump predictions: detection to a .pkl file, segmentation to a folder of label PNGs."""
    import os
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


def prepare_test(cfg, out: Optional[str] = None, show_dir: Optional[str] = None):
    """Check the test data and add the ``--out`` dump / ``--show-dir`` drawings to ``cfg``."""
    from .datasets.preflight import check_data
    check_data(cfg, splits=('test', ))
    if out:  # both backends score through cfg.test_evaluator, so both dump through it
        add_output(cfg, out)
    if show_dir:
        enable_visualization(cfg, show_dir)
    return cfg


def _floats(metrics) -> dict:
    return {k: (float(v) if isinstance(v, (int, float)) or hasattr(v, '__float__') else v)
            for k, v in (metrics or {}).items()}


def record_test(cfg, config_path: str, checkpoint: str, backend: str, metrics: dict,
                seed: Optional[int] = None) -> dict:
    """Write the metrics and the test result of a finished test into ``cfg.work_dir``."""
    metrics = _floats(metrics)
    suffix = '' if backend == 'pytorch' else '_onnx'
    write_atomically(osp.join(cfg.work_dir, f'test_metrics{suffix}.json'),
                     json.dumps(metrics, indent=2, sort_keys=True))
    result = dict(config=config_path, checkpoint=osp.abspath(checkpoint), backend=backend,
                  seed=seed, metrics=metrics)
    write_result(cfg.work_dir, 'test' + suffix, result)
    return result


def test(cfg, config_path: str, checkpoint: str) -> dict:
    """Score a PyTorch checkpoint with the config's test set; returns the test result."""
    ckpt = _checked(checkpoint, 'checkpoint')
    seed = checkpoint_meta(ckpt).get('seed')
    cfg.load_from, cfg.resume = checkpoint, False
    runner = build_runner(cfg)
    check_state_dict_matches(runner.model, ckpt, checkpoint)
    del ckpt
    runner.logger.info(f'task: {task_of(cfg)} ({cfg.default_scope}), trained with seed {seed}')
    metrics = runner.test()
    if runner.rank != 0:
        return dict(metrics=_floats(metrics))
    result = record_test(cfg, config_path, checkpoint, 'pytorch', metrics, seed)
    runner.logger.info(f'metrics written to {osp.join(cfg.work_dir, "test_metrics.json")}')
    return result
