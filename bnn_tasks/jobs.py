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
import os
import logging
import os.path as osp
import time
from typing import Optional

from .checkpoint import (check_state_dict, checkpoint_meta, latest_checkpoint,
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


def check_state_dict_matches(model, ckpt: dict, path: str) -> None:
    """Refuse a checkpoint of another architecture (an error naming keys and shapes)."""
    check_state_dict(model, state_dict_of(ckpt), source=f'checkpoint {path!r}')


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
                     deterministic: Optional[bool] = None, amp: bool = False,
                     binarize_warmup: Optional[float] = None):
    """Apply ``tools/train.py``'s options to ``cfg`` (in place), checking the data first.

    ``binarize_warmup``: binarize gradually over that share of the run, from the float weights
    of ``load_from`` (``bnn_tasks.engine.recipe.with_binarization_warmup``).
    """
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
    if amp:
        enable_amp(cfg, config_path)
    if binarize_warmup is not None:
        _add_binarization_warmup(cfg, config_path, binarize_warmup)
    set_randomness(cfg, seed, deterministic)
    return cfg


def _add_binarization_warmup(cfg, config_path: str, fraction: float) -> None:
    from .engine.recipe import RecipeError, check_binary, with_binarization_warmup
    if not cfg.get('load_from'):
        raise ToolError(f'--binarize-warmup: {config_path} has no load_from; the warm-up '
                        'blends from float weights (a float stage checkpoint) to binary ones')
    try:
        check_binary(cfg, config_path)
        cfg.custom_hooks = with_binarization_warmup(cfg, fraction).custom_hooks
    except RecipeError as e:
        raise _recipe_error(e) from None


def enable_amp(cfg, config_path: str) -> None:
    """``--amp`` of the tools that train (train, backbone pretraining, step cost): mixed
    precision for ``cfg`` (in place), or a ``ToolError`` naming the config and why not."""
    from .engine import use_mixed_precision
    try:
        use_mixed_precision(cfg)
    except ValueError as e:
        raise ToolError(f'{config_path}: {e}') from None


def _resume_target(cfg, resume: str):
    """(path, checkpoint) to resume from; ``resume='auto'``: the work dir's newest readable."""
    log = logging.getLogger('bnn_tasks')
    if resume != 'auto':
        return resume, read_checkpoint(resume)
    path, ckpt = latest_checkpoint(cfg.work_dir, warn=lambda m: log.warning(f'--resume: {m}'))
    if path is None:
        log.warning(f'--resume: no readable checkpoint in {cfg.work_dir}; training from '
                    'scratch')
    return path, ckpt


def train(cfg, config_path: str, resume: Optional[str] = None,
          keep_process_group: bool = False, record_config: Optional[str] = None) -> dict:
    """Train the (already prepared) ``cfg``; returns and records the train result.

    ``resume``: a checkpoint path, ``'auto'`` (the work dir's newest readable checkpoint; an
    unreadable one is skipped with a warning naming it) or None. ``keep_process_group``: a
    distributed run leaves its process group up (after a barrier: every rank has finished and
    rank 0's checkpoint is written) for a next runner in this process to reuse, as the
    two-stage recipe's stage 2 does; mmengine initialises a group only where none exists.
    ``record_config``: config text written (rank 0) to ``WORK_DIR/<config name>`` once the
    runner is built, before training, over the config mmengine's Runner dumps there (for a
    distilled run, the wrapper rather than the network that tools/test.py and export need).
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
        load_from = read_checkpoint(cfg.load_from, 'load_from checkpoint')
    runner = build_runner(cfg)
    if record_config is not None and int(os.environ.get('RANK', '0')) == 0:
        write_atomically(osp.join(cfg.work_dir, osp.basename(config_path)), record_config)
    if load_from is not None and 'backbone_pretrain' in checkpoint_meta(load_from):
        # mmengine loads load_from non-strictly: a backbone from another config would be
        # skipped with a warning, and the run would silently train from scratch
        from .engine.backbone_pretrain import check_backbone_checkpoint
        try:  # a distilled run loads it into its student
            check_backbone_checkpoint(getattr(runner.model, 'student', runner.model),
                                      load_from['state_dict'], cfg.load_from)
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
    if keep_process_group:
        _wait_for_peers()
    else:
        _close_distributed(wait_for_peers=True)
    result = dict(config=config_path, work_dir=osp.abspath(cfg.work_dir), seed=runner.seed,
                  iterations=runner.iter, max_iters=runner.max_iters,
                  train_minutes=round((time.monotonic() - start) / 60, 3),
                  checkpoint=pointed_checkpoint(cfg.work_dir),
                  time_budget=_budget_record(cfg.work_dir))
    if runner.rank == 0:
        write_result(cfg.work_dir, 'train', result)
    return result


def run_step(cmd, cwd: str) -> None:
    """Run one tool as a user would type it (``['python', 'tools/x.py', ...]``, printed first,
    run with this interpreter in ``cwd``); a failing tool ends the caller with its exit code
    (the tool has already printed its one-line error)."""
    import subprocess
    import sys
    print('+', ' '.join(cmd), flush=True)
    code = subprocess.run([sys.executable] + list(cmd[1:]), cwd=cwd).returncode
    if code:
        raise SystemExit(code)


def test_command(config: str, checkpoint: str, work_dir: str, extra=(), cfg_options=()) -> list:
    """``tools/test.py`` scoring ``checkpoint`` into ``work_dir`` (its test_result.json)."""
    cmd = ['python', 'tools/test.py', config, checkpoint, '--work-dir', work_dir, *extra]
    return cmd + (['--cfg-options', *cfg_options] if cfg_options else [])


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


def _wait_for_peers() -> None:
    import torch.distributed as torch_dist
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()


# ------------------------------------------------------------------------------------ testing
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
    """Dump predictions: detection to a .pkl file, segmentation to a folder of label PNGs."""
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
    ckpt = read_checkpoint(checkpoint)
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


# --------------------------------------------------------------------------- two-stage recipe
STAGE_DIRS = ('stage1_float', 'stage2_binary')


def _recipe_error(e) -> ToolError:
    return ToolError(str(e))


def train_two_stage(cfg, config_path: str, first_stage_fraction: Optional[float] = None,
                    max_iters: Optional[int] = None, budget_minutes: Optional[float] = None,
                    distill: bool = True, teacher_config: Optional[str] = None,
                    teacher_checkpoint: Optional[str] = None,
                    distill_cfg: Optional[dict] = None, distill_float_stage: bool = False,
                    float_stage_activations: str = 'clip',
                    binary_stage_lr_factor: Optional[float] = None,
                    binarize_warmup: Optional[float] = None, **prepare_options) -> dict:
    """The float-to-binary recipe (``bnn_tasks.engine.recipe``) for the binary ``cfg``.

    Stage 1 (float weights, clip activations, or the config's binary activations with
    ``float_stage_activations='binary'``) trains in ``WORK_DIR/stage1_float``, stage 2 (the
    binary config from stage 1's weights, distilled from it unless ``distill`` is False) in
    ``WORK_DIR/stage2_binary``. ``max_iters`` and ``budget_minutes`` are split between them by
    ``first_stage_fraction`` (the recipe's ``FIRST_STAGE_FRACTION`` by default). Stage 2 trains
    at ``binary_stage_lr_factor`` times the config's learning rate (the recipe's
    ``BINARY_STAGE_LR_FACTOR`` by default) and, with ``binarize_warmup``, binarizes gradually
    over that share of its iterations.
    ``teacher_config``/``teacher_checkpoint``: another teacher (e.g. the float twin of
    ``configs/baselines``) instead of stage 1; with ``distill_float_stage`` it teaches stage 1
    too (a teacher that already segments, say, where the float stage alone does not learn in
    its budget). ``prepare_options``: the other arguments of :func:`prepare_training`, applied
    to both stages.

    ``WORK_DIR/train_result.json`` names both stages' results (``stages``) and, at the top
    level, stage 2's checkpoint and iterations and the two stages' minutes, so readers of a
    one-stage result work unchanged. Each stage folder's ``<config name>`` is the network it
    trains (what ``tools/test.py`` and export need; the student, not the distillation wrapper),
    written before the stage starts.
    """
    from mmengine.config import Config
    from .engine.recipe import (BINARY_STAGE_LR_FACTOR, FIRST_STAGE_FRACTION, RecipeError,
                                binary_stage, check_lr_factor, check_warmup_fraction,
                                float_stage, split_budget, student_config, with_teacher)
    fraction = FIRST_STAGE_FRACTION if first_stage_fraction is None else first_stage_fraction
    lr_factor = BINARY_STAGE_LR_FACTOR if binary_stage_lr_factor is None \
        else binary_stage_lr_factor
    if distill_float_stage and not teacher_config:
        raise ToolError('--distill-float-stage needs --teacher-config (the float stage cannot '
                        'teach itself)')
    if teacher_checkpoint and not distill:
        raise ToolError('--teacher-checkpoint needs distillation (drop --no-distill)')
    if teacher_config and not teacher_checkpoint:
        raise ToolError('--teacher-config needs --teacher-checkpoint (its trained weights)')
    try:
        check_lr_factor(lr_factor)  # before stage 1 spends its budget
        if binarize_warmup is not None:
            check_warmup_fraction(binarize_warmup)
        stage1 = float_stage(cfg, config_path, float_stage_activations)
        iters = split_budget(max_iters, fraction, integer=True)
        minutes = split_budget(budget_minutes, fraction)
    except RecipeError as e:
        raise _recipe_error(e) from None
    teacher = None
    if teacher_config:
        if not osp.isfile(teacher_config):
            raise ToolError(f'teacher config {teacher_config!r} does not exist')
        teacher = Config.fromfile(teacher_config)
    if teacher_checkpoint:
        read_checkpoint(teacher_checkpoint, 'teacher checkpoint')
    if distill_float_stage:
        stage1 = with_teacher(stage1, teacher, teacher_checkpoint, distill_cfg)
    work_dir = cfg.work_dir
    name = osp.splitext(osp.basename(config_path))[0]

    def run_stage(stage_cfg, index):
        stage_cfg.work_dir = osp.join(work_dir, STAGE_DIRS[index])
        # mmengine names loggers and visualizers by experiment: two runners in one process
        # within the same second would otherwise share them
        stage_cfg.experiment_name = f'{name}_{STAGE_DIRS[index]}'
        if stage_cfg.get('visualizer'):  # configs name it 'visualizer': one instance per name
            stage_cfg.visualizer['name'] = f'{name}_{STAGE_DIRS[index]}_{time.time_ns()}'
        prepare_training(stage_cfg, config_path, max_iters=iters[index],
                         budget_minutes=minutes[index], **prepare_options)
        # distributed: stage 2's runner reuses stage 1's process group. The network the stage
        # trains is recorded before it trains, so a stage stopped part way can be scored too.
        return train(stage_cfg, config_path, keep_process_group=index == 0,
                     record_config=student_config(stage_cfg).pretty_text)

    first = run_stage(stage1, 0)
    try:  # stage 1 left a distributed process group up for stage 2
        if first['checkpoint'] is None:
            raise ToolError(f'stage 1 in {first["work_dir"]} wrote no checkpoint')
        try:
            stage2 = binary_stage(cfg, first['checkpoint'], config_path, distill=distill,
                                  teacher_config=teacher, teacher_checkpoint=teacher_checkpoint,
                                  distill_cfg=distill_cfg, lr_factor=lr_factor,
                                  stage1_activations=float_stage_activations,
                                  binarize_warmup=binarize_warmup)
        except RecipeError as e:
            raise _recipe_error(e) from None
    except BaseException:
        _close_distributed(wait_for_peers=False)
        raise
    second = run_stage(stage2, 1)
    model = stage2.model
    result = dict(
        config=config_path, work_dir=osp.abspath(work_dir), recipe='two_stage',
        first_stage_fraction=fraction, float_stage_activations=float_stage_activations,
        binary_stage_lr_factor=lr_factor, binarize_warmup=binarize_warmup, seed=second['seed'],
        iterations=second['iterations'],
        max_iters=second['max_iters'],
        checkpoint=second['checkpoint'], time_budget=second['time_budget'],
        train_minutes=round(first['train_minutes'] + second['train_minutes'], 3),
        distill=None if model.get('type') != 'DistillingModel' else dict(
            teacher_config=teacher_config or 'float stage of the config',
            teacher_checkpoint=model['teacher_checkpoint'],
            options={k: v for k, v in model.items()
                     if k not in ('type', 'student', 'teacher', 'teacher_checkpoint')},
            float_stage=distill_float_stage),
        stages={STAGE_DIRS[0]: first, STAGE_DIRS[1]: second})
    if int(os.environ.get('RANK', '0')) == 0:  # the process group is already torn down
        write_result(work_dir, 'train', result)
    return result
