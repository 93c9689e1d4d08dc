#!/usr/bin/env python
"""Train and score configs at one budget and keep the results table (docs/results.md).

Each row is made by two plain commands, recorded verbatim in the table so anyone can rerun it:

    python tools/train.py CONFIG --work-dir W --max-iters N --val-interval V --budget-minutes M
    python tools/test.py CONFIG <the checkpoint train_result.json names> --work-dir W

What each run did is read from the result files the tools write (``bnn_tasks.jobs``:
``train_result.json``, ``test_result.json``). Rows accumulate in ``OUT/results.json`` (a
rerun of a config replaces its row); the markdown table and the learning curves (training loss
and validation metric per iteration, from mmengine's ``vis_data/scalars.json``) are
regenerated from it every time (``bnn_tasks.analysis.results_page``).

    python tools/results_table.py configs/bireal/faster-rcnn_bireal18_fpn_digits.py \\
        --max-iters 1000 --budget-minutes 25 --val-interval 250
    python tools/results_table.py --render-only     # rebuild md/png from results.json

A config with ``load_from`` that ``tools/pretrain_backbone.py`` writes (``*_pretrained.py``)
gets that command first with ``--pretrain-minutes``; its time is part of the row's minutes.
With ``--two-stage`` a binary row pretrains the recipe's float stage (``--float-stage``), the
network its stage 1 trains.

``--fit-minutes M`` gives every row the same wall-clock budget instead of the same iteration
count: the row starts with ``--max-iters`` as its guess, times its own steps at 10 % and 50 %
of the budget (or of the guessed iterations, if that comes first) and re-fits the rest of its
schedule (``tools/train.py --budget-minutes M --refit-to-budget``), so a slow backbone ends
with the budget and with its decay complete instead of being cut off at a high learning rate.

    python tools/results_table.py configs/*/faster-rcnn_*_digits.py --fit-minutes 10 \
        --val-interval 0

``--score-checkpoints N`` keeps N evenly spaced checkpoints per run and scores them afterwards:
learning-curve points that cost no training time (``--render-only`` scores existing rows').

``--two-stage`` trains every binary row by the float-to-binary recipe (``tools/train.py
--two-stage``: the float stage of the config, then the binary config from its weights,
distilled from it unless ``--no-distill``); the budget covers both stages, the float stage is
scored too (what binarizing it costs) and float configs in the same command (the twins) are
trained plainly at the same budget. A ``--no-distill`` row is named ``NAME_no-distill`` so it
sits next to the distilled one; ``--distill-options KEY=VALUE ...`` (``DistillingModel``
options, for example ``feat_loss=relative``) makes a row ``NAME_KEY-VALUE``.

    python tools/results_table.py configs/baselines/faster-rcnn_r18_fpn_digits.py \
        configs/bireal/faster-rcnn_bireal18_fpn_digits.py --two-stage --fit-minutes 40 \
        --max-iters 2400 --val-interval 0 --out docs/results/recipe
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys
import time

from bnn_tasks.analysis.logs import latest_run_curves
from bnn_tasks.analysis.results_page import config_name, write_results_page
from bnn_tasks.checkpoint import CheckpointError, checkpoint_iteration
from bnn_tasks.engine.recipe import FLOAT_STAGE_ACTIVATIONS
from bnn_tasks.jobs import STAGE_DIRS, read_result, run_step, test_command
from bnn_tasks.machine import machine_description, matmul_gflops

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('configs', nargs='*', help='config files, one row each')
    p.add_argument('--max-iters', type=int, default=1000,
                   help='iterations per row (with --fit-minutes: the first guess)')
    p.add_argument('--budget-minutes', type=float, default=25.0)
    p.add_argument('--val-interval', type=int, default=None,
                   help='validate every N iterations (learning curves); 0: no validation '
                   'inside training; default: at the end')
    p.add_argument('--pretrain-minutes', type=float, default=None,
                   help="first pretrain the backbone for this long (configs whose load_from "
                   "tools/pretrain_backbone.py writes)")
    p.add_argument('--pretrain-iters', type=int, default=None,
                   help='first pretrain the backbone for this many iterations')
    p.add_argument('--reuse-pretrain', action='store_true',
                   help="keep the backbone already pretrained where the config's load_from "
                   'points (its summary json gives the row its pretraining iterations/minutes)')
    p.add_argument('--fit-minutes', type=float, default=None,
                   help='same wall-clock budget for every row: the run re-fits its schedule '
                   'to end within this many minutes (--max-iters is the first guess; '
                   'overrides --budget-minutes)')
    p.add_argument('--two-stage', action='store_true',
                   help='binary rows by the two-stage recipe (tools/train.py --two-stage) '
                   'within the budget; float rows plainly')
    p.add_argument('--no-distill', action='store_true',
                   help='with --two-stage: stage 2 without distillation (row NAME_no-distill)')
    p.add_argument('--distill-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='with --two-stage: DistillingModel options for stage 2, passed to '
                   'tools/train.py as given (row NAME_KEY-VALUE), e.g. feat_loss=relative')
    p.add_argument('--teacher-config', default=None,
                   help='with --two-stage: distil from this model (e.g. the float twin of '
                   'configs/baselines) instead of stage 1; needs --teacher-checkpoint (row '
                   'NAME_teacher-TEACHER)')
    p.add_argument('--teacher-checkpoint', default=None, help="the teacher's weights")
    p.add_argument('--distill-float-stage', action='store_true',
                   help='the --teacher-config model teaches the float stage too (row '
                   'NAME_..._teacher-TEACHER_float-stage-too)')
    p.add_argument('--first-stage-fraction', type=float, default=None,
                   help="with --two-stage: the float stage's share of the budget (default: "
                   "the recipe's)")
    p.add_argument('--float-stage-activations', choices=FLOAT_STAGE_ACTIVATIONS, default=None,
                   help="with --two-stage: the float stage's activations, clip (the recipe's) or "
                   'binary (row NAME_..._float-stage-binary-act)')
    p.add_argument('--binary-stage-lr-factor', type=float, default=None,
                   help="with --two-stage: the binary stage's learning rate against the "
                   "config's (default: the recipe's; row NAME_..._binary-lr-FACTOR)")
    p.add_argument('--binarize-warmup', type=float, default=None, metavar='FRACTION',
                   help='with --two-stage: binarize gradually over this share of the binary '
                   'stage (row NAME_..._binarize-warmup-FRACTION)')
    p.add_argument('--amp', action='store_true',
                   help='train with tools/train.py --amp (bfloat16 autocast on a CPU that has '
                   'it; row NAME_amp): a binary row is compared with a float twin trained at '
                   'the same precision')
    p.add_argument('--score-checkpoints', type=int, default=0, metavar='N',
                   help='keep N evenly spaced checkpoints of each training run (first stage '
                   'included) and score them: validation points for the learning curve that '
                   'cost no training time; with --render-only, score what the rows already in '
                   'the table kept')
    p.add_argument('--work-root', default='work_dirs/results')
    p.add_argument('--out', default='docs/results', help='folder for results.json/md and png')
    p.add_argument('--render-only', action='store_true')
    return p.parse_args(argv)


def task_of(config_path: str) -> str:
    from mmengine.config import Config
    scope = Config.fromfile(config_path, import_custom_modules=False).get('default_scope')
    return 'detection' if scope == 'mmdet' else 'segmentation'


def run(cmd):
    run_step(cmd, REPO)


def is_binary(config_path: str) -> bool:
    """Whether the config builds binary convs (the recipe's own test)."""
    from mmengine.config import Config
    from bnn_tasks.engine.recipe import RecipeError, check_binary
    try:
        check_binary(Config.fromfile(osp.join(REPO, config_path), import_custom_modules=False),
                     config_path)
    except RecipeError:
        return False
    return True


def train(config: str, work_dir: str, args, fit_minutes=None, val_interval=None,
          cfg_options=(), recipe_args=()):
    """Train ``config`` into ``work_dir``; returns (command, train result, run facts).

    With ``fit_minutes`` the run re-fits its schedule to that wall-clock budget; otherwise
    ``--max-iters``/``--budget-minutes`` apply. ``recipe_args``: ``--two-stage`` and its
    options (the facts are then stage 2's; the result names both stages).
    """
    budget_minutes = fit_minutes or args.budget_minutes
    cmd = ['python', 'tools/train.py', config, '--work-dir', work_dir,
           '--max-iters', str(args.max_iters), '--budget-minutes', str(budget_minutes)]
    cmd += list(recipe_args)
    if args.amp:
        cmd.append('--amp')
    if fit_minutes:
        cmd.append('--refit-to-budget')
    if val_interval is not None:
        cmd += ['--val-interval', str(val_interval)]
    if args.score_checkpoints:
        cfg_options = list(cfg_options) + checkpoint_options(args.max_iters,
                                                             args.score_checkpoints)
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    # a fresh folder: checkpoints of an earlier run must not become this run's curve points
    shutil.rmtree(osp.join(REPO, work_dir), ignore_errors=True)
    run(cmd)
    result = read_result(osp.join(REPO, work_dir), 'train')
    last = result['stages'][STAGE_DIRS[1]] if result.get('stages') else result
    refits = (last.get('time_budget') or {}).get('refits') or []
    max_iters = refits[-1]['new_max_iters'] if refits else None
    return cmd, result, dict(
        iterations=last['iterations'], max_iters=max_iters or last.get('max_iters'),
        budget_minutes=budget_minutes, refits=refits, seed=last['seed'],
        minutes=round(last['train_minutes'], 1),
        checkpoint=osp.relpath(last['checkpoint'], REPO),
        work_dir=osp.relpath(last['work_dir'], REPO))


def scored_first_stage(config: str, result: dict) -> dict:
    """The float stage of a ``--two-stage`` run, scored: what binarizing it costs."""
    stage = result['stages'][STAGE_DIRS[0]]
    work_dir = osp.relpath(stage['work_dir'], REPO)
    stage_config = osp.join(work_dir, osp.basename(config))  # the float stage as it trained
    checkpoint = osp.relpath(stage['checkpoint'], REPO)
    return dict(config=stage_config, work_dir=work_dir, iterations=stage['iterations'],
                max_iters=stage.get('max_iters'), minutes=round(stage['train_minutes'], 1),
                checkpoint=checkpoint, metrics=test(stage_config, checkpoint, work_dir)[1],
                train_curve=latest_run_curves(osp.join(REPO, work_dir))[0])


def test(config: str, checkpoint: str, work_dir: str):
    """(command, metrics) of tools/test.py on ``checkpoint``."""
    cmd = test_command(config, checkpoint, work_dir)
    run(cmd)
    return cmd, read_result(osp.join(REPO, work_dir), 'test')['metrics']


def checkpoint_options(max_iters: int, count: int) -> list:
    """``--cfg-options`` that keep ``count`` evenly spaced checkpoints of a run (one more is
    kept for a time-budget stop)."""
    return [f'default_hooks.checkpoint.interval={-(-max_iters // count)}',
            f'default_hooks.checkpoint.max_keep_ckpts={count + 1}']


def kept_checkpoints(work_dir: str) -> list:
    """[(iteration, path)] of the readable training checkpoints in ``work_dir``, in order."""
    kept = []
    for path in glob.glob(osp.join(REPO, work_dir, '*.pth')):
        try:
            kept.append((checkpoint_iteration(path), path))
        except CheckpointError as e:
            print(f'skipping {path}: {e}', file=sys.stderr)
    return sorted(kept)


def score_checkpoints(config: str, work_dir: str, known=()) -> list:
    """[(iteration, metrics)] of every checkpoint in ``work_dir`` whose iteration is not in
    ``known``. Each is tested into its own folder, so the row's test result stays untouched."""
    curve = []
    for it, ckpt in kept_checkpoints(work_dir):
        if it in known:
            continue
        out = osp.join(work_dir, 'checkpoint_scores', f'iter_{it}')
        curve.append((it, test(config, osp.relpath(ckpt, REPO), out)[1]))
    return curve


def add_checkpoint_scores(row: dict, work_root: str) -> None:
    """Score the kept checkpoints of a row (and of its first stage) not scored yet."""
    stages = [row]
    if row.get('first_stage'):
        stages.insert(0, row['first_stage'])
    for stage in stages:
        config = stage.get('stage_config', stage['config'])
        work_dir = stage.get('work_dir') or osp.join(work_root, config_name(config))
        known = {it for it, _ in stage.get('checkpoint_curve', [])} | {stage['iterations']}
        known |= {step for step, _ in stage.get('val_curve', [])}
        # json gives [it, metrics] lists, new points are tuples: order by iteration only
        stage['checkpoint_curve'] = sorted(stage.get('checkpoint_curve', []) +
                                           score_checkpoints(config, work_dir, known),
                                           key=lambda point: point[0])
        if stage is not row and not stage.get('train_curve'):
            stage['train_curve'] = latest_run_curves(osp.join(REPO, work_dir))[0]


def row_name(config: str, args, two_stage: bool) -> str:
    """The row's name: the config's, then what the run changed (each its own row)."""
    name = _recipe_row_name(config, args) if two_stage else config_name(config)
    return name + '_amp' if args.amp else name


def _recipe_row_name(config: str, args) -> str:
    # a non-default split is its own row, not a rerun of the recipe's
    split = ([f'float-stage-{args.first_stage_fraction:g}']
             if args.first_stage_fraction is not None else [])
    if args.float_stage_activations not in (None, 'clip'):
        split.append(f'float-stage-{args.float_stage_activations}-act')
    if args.binary_stage_lr_factor is not None:
        split.append(f'binary-lr-{args.binary_stage_lr_factor:g}')
    if args.binarize_warmup is not None:
        split.append(f'binarize-warmup-{args.binarize_warmup:g}')
    if args.no_distill:
        return '_'.join([config_name(config), 'no-distill'] + split)
    teacher = ['teacher-' + config_name(args.teacher_config)] if args.teacher_config else []
    if args.distill_float_stage:
        teacher.append('float-stage-too')
    return '_'.join([config_name(config)] +
                    [option.replace('=', '-', 1) for option in sorted(args.distill_options)]
                    + teacher + split)


def recipe_args(args) -> list:
    """``tools/train.py`` options of the two-stage recipe."""
    extra = ['--two-stage']
    if args.no_distill:
        extra.append('--no-distill')
    if args.distill_options:
        extra += ['--distill-options'] + args.distill_options
    if args.teacher_config:
        extra += ['--teacher-config', args.teacher_config,
                  '--teacher-checkpoint', args.teacher_checkpoint]
    if args.distill_float_stage:
        extra.append('--distill-float-stage')
    if args.first_stage_fraction is not None:
        extra += ['--first-stage-fraction', str(args.first_stage_fraction)]
    if args.float_stage_activations:
        extra += ['--float-stage-activations', args.float_stage_activations]
    if args.binary_stage_lr_factor is not None:
        extra += ['--binary-stage-lr-factor', str(args.binary_stage_lr_factor)]
    if args.binarize_warmup is not None:
        extra += ['--binarize-warmup', str(args.binarize_warmup)]
    return extra


def train_and_test(config: str, args) -> dict:
    two_stage = args.two_stage and is_binary(config)
    name = row_name(config, args, two_stage)
    work_dir = osp.join(args.work_root, name)
    commands, pretrain = [], None
    speed_before = matmul_gflops()  # on the idle machine, before and after the training
    if args.pretrain_minutes or args.pretrain_iters:
        pretrain_cmd = ['python', 'tools/pretrain_backbone.py', config]
        # stage 1 (float weights) starts from it; clip activations pretrain it even where
        # stage 1 keeps binary ones (clip, then binary activations, then binary weights)
        if two_stage:
            pretrain_cmd.append('--float-stage')
        if args.pretrain_minutes:
            pretrain_cmd += ['--minutes', str(args.pretrain_minutes)]
        if args.pretrain_iters:
            pretrain_cmd += ['--max-iters', str(args.pretrain_iters)]
        if args.amp:
            pretrain_cmd.append('--amp')
        run(pretrain_cmd)
        summary = pretrain_summary(config)
        pretrain = dict(minutes=round(summary['minutes'], 1), iterations=summary['iterations'],
                        val_accuracy=summary['val_accuracy'])
        commands.append(' '.join(pretrain_cmd))
    elif args.reuse_pretrain:
        summary = pretrain_summary(config)
        pretrain = dict(minutes=round(summary['minutes'], 1), iterations=summary['iterations'],
                        val_accuracy=summary['val_accuracy'], reused=True)
        commands.append(f'python tools/pretrain_backbone.py {config} '
                        f'--max-iters {summary["iterations"]}'
                        + (' --float-stage' if summary.get('float_stage') else '')
                        + (' --amp' if summary.get('amp') else ''))
    train_cmd, result, facts = train(config, work_dir, args, args.fit_minutes,
                                     args.val_interval,
                                     recipe_args=recipe_args(args) if two_stage else ())
    speed_after = matmul_gflops()
    first_stage = scored_first_stage(config, result) if two_stage else None
    # stage 2's config is the student as trained (tools/test.py and export take it)
    test_config = osp.join(facts['work_dir'], osp.basename(config)) if two_stage else config
    test_cmd, metrics = test(test_config, facts['checkpoint'], facts['work_dir'])
    train_curve, val_curve = latest_run_curves(osp.join(REPO, facts['work_dir']))
    return dict(config=config, name=name, task=task_of(config), iterations=facts['iterations'],
                max_iters=facts['max_iters'] or args.max_iters,
                budget_minutes=facts['budget_minutes'], refits=facts['refits'],
                seed=facts['seed'], train_minutes=facts['minutes'], pretrain=pretrain,
                amp=args.amp,
                recipe=dict(two_stage=True, distill=result.get('distill'),
                            first_stage_fraction=result.get('first_stage_fraction'),
                            float_stage_activations=result.get('float_stage_activations'),
                            binary_stage_lr_factor=result.get('binary_stage_lr_factor'),
                            binarize_warmup=result.get('binarize_warmup'))
                if two_stage else None,
                stage_config=test_config, work_dir=facts['work_dir'],
                first_stage=first_stage, metrics=metrics,
                commands=commands + [' '.join(train_cmd), ' '.join(test_cmd)],
                train_curve=train_curve, val_curve=val_curve,
                cpu=machine_description(), date=time.strftime('%Y-%m-%d'),
                matmul_gflops=[round(speed_before, 1), round(speed_after, 1)])


def pretrain_summary(config: str) -> dict:
    """The json tools/pretrain_backbone.py writes beside the config's ``load_from``."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config), import_custom_modules=False)
    if not cfg.get('load_from'):
        raise SystemExit(f'error: {config} has no load_from for a pretrained backbone')
    with open(osp.join(REPO, osp.splitext(cfg.load_from)[0] + '.json')) as f:
        return json.load(f)


def main(argv=None):
    args = parse_args(argv)
    out_dir = osp.join(REPO, args.out)
    os.makedirs(out_dir, exist_ok=True)
    json_path = osp.join(out_dir, 'results.json')
    rows = []
    if osp.isfile(json_path):
        with open(json_path) as f:
            rows = json.load(f)
    if not args.render_only:
        if not args.configs:
            raise SystemExit('error: give config files, or --render-only')
        recipe_only = args.no_distill or args.distill_options or args.teacher_config or \
            args.first_stage_fraction is not None or args.float_stage_activations or \
            args.binary_stage_lr_factor is not None or args.binarize_warmup is not None
        if recipe_only and not args.two_stage:
            raise SystemExit('error: --no-distill, --distill-options, --teacher-config, '
                             '--first-stage-fraction, --float-stage-activations, '
                             '--binary-stage-lr-factor and --binarize-warmup need --two-stage')
        if args.no_distill and (args.distill_options or args.teacher_config):
            raise SystemExit('error: --distill-options and --teacher-config configure the '
                             'distillation that --no-distill turns off')
        if bool(args.teacher_config) != bool(args.teacher_checkpoint):
            raise SystemExit('error: --teacher-config and --teacher-checkpoint go together')
        if args.distill_float_stage and not args.teacher_config:
            raise SystemExit('error: --distill-float-stage needs --teacher-config')
        missing = [c for c in args.configs if not osp.isfile(c)]
        if missing:  # before the first row: a batch must not stop at its third config
            raise SystemExit(f'error: config file(s) {", ".join(map(repr, missing))} do not exist')
        for config in args.configs:
            config = osp.relpath(osp.abspath(config), REPO)
            row = train_and_test(config, args)
            if args.score_checkpoints:
                add_checkpoint_scores(row, args.work_root)
            rows = [r for r in rows if r['name'] != row['name']] + [row]
            with open(json_path, 'w') as f:  # after every row: a long batch keeps its progress
                json.dump(rows, f, indent=1)
    elif args.score_checkpoints:
        wanted = {osp.relpath(osp.abspath(c), REPO) for c in args.configs}
        for row in rows:
            if not wanted or row['config'] in wanted:
                add_checkpoint_scores(row, args.work_root)
                with open(json_path, 'w') as f:
                    json.dump(rows, f, indent=1)
    print(write_results_page(rows, out_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
