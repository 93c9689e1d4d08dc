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

``--fit-minutes M`` gives every row the same wall-clock budget instead of the same iteration
count: the row starts with ``--max-iters`` as its guess, times its own steps at 10 % and 50 %
of the budget (or of the guessed iterations, if that comes first) and re-fits the rest of its
schedule (``tools/train.py --budget-minutes M --refit-to-budget``), so a slow backbone ends
with the budget and with its decay complete instead of being cut off at a high learning rate.

    python tools/results_table.py configs/*/faster-rcnn_*_digits.py --fit-minutes 10 \
        --val-interval 0

``--score-checkpoints N`` keeps N evenly spaced checkpoints per run and scores them afterwards:
learning-curve points that cost no training time (``--render-only`` scores existing rows').

``--first-stage FLOAT_CONFIG`` runs the two-stage recipe: the float model of the same
architecture is trained (and scored) first, then each row starts from its last checkpoint
through ``--cfg-options load_from=...``; the row's minutes include both stages.

    python tools/results_table.py configs/bireal/faster-rcnn_bireal18_fpn_digits_2stage.py \
        --first-stage configs/bireal/faster-rcnn_bireal18-fp_fpn_digits.py \
        --first-stage-minutes 4 --fit-minutes 6 --val-interval 0
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
from bnn_tasks.jobs import read_result, run_step, test_command
from bnn_tasks.machine import machine_description

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
    p.add_argument('--first-stage', metavar='CONFIG',
                   help='two-stage recipe: first train this float config (same parameter names '
                   "as the rows' binary configs), then start every row from its last "
                   'checkpoint (load_from); its minutes count in the rows')
    p.add_argument('--first-stage-minutes', type=float, default=None,
                   help='wall-clock budget of --first-stage (schedule re-fitted to it); '
                   'default: --max-iters/--budget-minutes')
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


def train(config: str, work_dir: str, args, fit_minutes=None, val_interval=None,
          cfg_options=()):
    """Train ``config`` into ``work_dir``; returns (command, last checkpoint, run facts).

    With ``fit_minutes`` the run re-fits its schedule to that wall-clock budget; otherwise
    ``--max-iters``/``--budget-minutes`` apply.
    """
    budget_minutes = fit_minutes or args.budget_minutes
    cmd = ['python', 'tools/train.py', config, '--work-dir', work_dir,
           '--max-iters', str(args.max_iters), '--budget-minutes', str(budget_minutes)]
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
    refits = (result.get('time_budget') or {}).get('refits') or []
    max_iters = refits[-1]['new_max_iters'] if refits else args.max_iters
    return cmd, osp.relpath(result['checkpoint'], REPO), dict(
        iterations=result['iterations'], max_iters=max_iters, budget_minutes=budget_minutes,
        refits=refits, seed=result['seed'], minutes=round(result['train_minutes'], 1))


def train_first_stage(args) -> dict:
    """Stage 1 of the two-stage recipe: the float model the rows start from, trained and scored
    (its metrics show what binarizing it costs)."""
    work_dir = osp.join(args.work_root, config_name(args.first_stage))
    cmd, checkpoint, facts = train(args.first_stage, work_dir, args,
                                   fit_minutes=args.first_stage_minutes, val_interval=0)
    return dict(facts, config=args.first_stage, command=' '.join(cmd), checkpoint=checkpoint,
                metrics=test(args.first_stage, checkpoint, work_dir)[1],
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
    stages = [(row, row['config'])]
    if row.get('first_stage'):
        stages.insert(0, (row['first_stage'], row['first_stage']['config']))
    for stage, config in stages:
        work_dir = osp.join(work_root, config_name(config))
        known = {it for it, _ in stage.get('checkpoint_curve', [])} | {stage['iterations']}
        known |= {step for step, _ in stage.get('val_curve', [])}
        # json gives [it, metrics] lists, new points are tuples: order by iteration only
        stage['checkpoint_curve'] = sorted(stage.get('checkpoint_curve', []) +
                                           score_checkpoints(config, work_dir, known),
                                           key=lambda point: point[0])
        if stage is not row and not stage.get('train_curve'):
            stage['train_curve'] = latest_run_curves(osp.join(REPO, work_dir))[0]


def train_and_test(config: str, args, first_stage=None) -> dict:
    name = config_name(config)
    work_dir = osp.join(args.work_root, name)
    commands, pretrain, cfg_options = [], None, []
    if first_stage is not None:
        commands.append(first_stage['command'])
        cfg_options.append(f'load_from={first_stage["checkpoint"]}')
    if args.pretrain_minutes or args.pretrain_iters:
        pretrain_cmd = ['python', 'tools/pretrain_backbone.py', config]
        if args.pretrain_minutes:
            pretrain_cmd += ['--minutes', str(args.pretrain_minutes)]
        if args.pretrain_iters:
            pretrain_cmd += ['--max-iters', str(args.pretrain_iters)]
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
                        f'--max-iters {summary["iterations"]}')
    train_cmd, checkpoint, facts = train(config, work_dir, args, args.fit_minutes,
                                         args.val_interval, cfg_options)
    test_cmd, metrics = test(config, checkpoint, work_dir)
    train_curve, val_curve = latest_run_curves(osp.join(REPO, work_dir))
    return dict(config=config, name=name, task=task_of(config), iterations=facts['iterations'],
                max_iters=facts['max_iters'], budget_minutes=facts['budget_minutes'],
                refits=facts['refits'], seed=facts['seed'],
                train_minutes=facts['minutes'], pretrain=pretrain,
                first_stage=first_stage, metrics=metrics,
                commands=commands + [' '.join(train_cmd), ' '.join(test_cmd)],
                train_curve=train_curve, val_curve=val_curve,
                cpu=machine_description(), date=time.strftime('%Y-%m-%d'))


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
        first_stage = None
        if args.first_stage:
            args.first_stage = osp.relpath(osp.abspath(args.first_stage), REPO)
            first_stage = train_first_stage(args)
        for config in args.configs:
            config = osp.relpath(osp.abspath(config), REPO)
            row = train_and_test(config, args, first_stage)
            if args.score_checkpoints:
                add_checkpoint_scores(row, args.work_root)
            rows = [r for r in rows if r['config'] != config] + [row]
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
