#!/usr/bin/env python
"""Train and score configs at one budget and keep the results table (docs/results.md).

Each row is made by two plain commands, recorded verbatim in the table so anyone can rerun it:

    python tools/train.py CONFIG --work-dir W --max-iters N --val-interval V --budget-minutes M
    python tools/test.py CONFIG W/<last checkpoint> --work-dir W

Rows accumulate in ``OUT/results.json`` (a rerun of a config replaces its row); the markdown
table and the learning curves (training loss and validation metric per iteration, from
mmengine's ``vis_data/scalars.json``) are regenerated from it every time.

    python tools/results_table.py configs/bireal/faster-rcnn_bireal18_fpn_digits.py \\
        --max-iters 1000 --budget-minutes 25 --val-interval 250
    python tools/results_table.py --render-only     # rebuild md/png from results.json

A config with ``load_from`` that ``tools/pretrain_backbone.py`` writes (``*_pretrained.py``)
gets that command first with ``--pretrain-minutes``; its time is part of the row's minutes.

``--fit-minutes M`` gives every row the same wall-clock budget instead of the same iteration
count: a short probe run times the config's step on this machine, and the row then trains the
number of iterations that fit in M minutes, with the whole schedule (warm-up, cosine to zero)
fitted to them, so a slow backbone is not cut off at a high learning rate. The probe is only
the first guess (a short probe missed the step by up to 25 %): the run re-times its own steps
at 10 % and 50 % of the budget and re-fits the rest of its schedule (``tools/train.py
--refit-to-budget``), so it ends with the budget and with its decay complete.

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
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the headline metric of each task, and the columns of its table
METRICS = {
    'detection': [('coco/bbox_mAP', 'COCO mAP'), ('pascal_voc/mAP', 'VOC mAP@0.5')],
    # mmseg reports percentages
    'segmentation': [('mIoU', 'mIoU %'), ('mAcc', 'mAcc %'), ('aAcc', 'aAcc %')],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('configs', nargs='*', help='config files, one row each')
    p.add_argument('--max-iters', type=int, default=1000)
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
                   help='same wall-clock budget for every row: time a short probe run, then '
                   'train as many iterations as fit in this many minutes (overrides '
                   '--max-iters and --budget-minutes)')
    p.add_argument('--probe-iters', type=int, default=30,
                   help='iterations of the --fit-minutes probe (the first 10 are not timed)')
    p.add_argument('--first-stage', metavar='CONFIG',
                   help='two-stage recipe: first train this float config (same parameter names '
                   "as the rows' binary configs), then start every row from its last "
                   'checkpoint (load_from); its minutes count in the rows')
    p.add_argument('--first-stage-minutes', type=float, default=None,
                   help='wall-clock budget of --first-stage (iterations fitted by a probe); '
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


def config_name(config: str) -> str:
    """A config's file name without folder and extension: its row name and work dir."""
    return osp.splitext(osp.basename(config))[0]


def task_of(config_path: str) -> str:
    from mmengine.config import Config
    scope = Config.fromfile(config_path, import_custom_modules=False).get('default_scope')
    return 'detection' if scope == 'mmdet' else 'segmentation'


def run(cmd):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def latest_scalars(work_dir: str):
    """(train curve, val curve) from the newest training log folder of ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    train, val = [], []
    for path in files[-1:]:
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec and 'iter' in rec:
                    train.append((rec['iter'], rec['loss']))
                elif 'step' in rec:
                    val.append((rec['step'], {k: v for k, v in rec.items() if k != 'step'}))
    return train, val


def probe_log_options(config: str) -> list:
    """Log every 10 iterations, each logged time the mean of those 10 (mmengine's default
    window is 10; a config that sets its own window gets it overridden)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config), import_custom_modules=False)
    options = ['default_hooks.logger.interval=10']
    if 'window_size' in (cfg.get('log_processor') or {}):
        options.append('log_processor.window_size=10')
    return options


def seconds_per_iteration(config: str, work_dir: str, probe_iters: int,
                          cfg_options=()) -> float:
    """Mean training step time of ``config`` here, from a short run logged every 10 iterations.

    The first logged window (data workers starting, first allocations) is left out.
    ``cfg_options`` are the row's own overrides (e.g. the first stage's ``load_from``).
    """
    if probe_iters < 20:
        raise SystemExit(f'error: --probe-iters must be >= 20, got {probe_iters}')
    shutil.rmtree(osp.join(REPO, work_dir), ignore_errors=True)
    run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
         '--max-iters', str(probe_iters), '--val-interval', '0',
         '--cfg-options', *cfg_options, *probe_log_options(config)])
    with open(glob.glob(osp.join(REPO, work_dir, '*', 'vis_data', 'scalars.json'))[0]) as f:
        times = [rec['time'] for rec in map(json.loads, f) if 'time' in rec and 'loss' in rec]
    if len(times) < 2:
        raise SystemExit(f'error: probe of {config} logged {len(times)} step times; need 2+')
    return sum(times[1:]) / len(times[1:])


def iterations_for(minutes: float, step_seconds: float) -> int:
    # 3% for checkpoints and the start-up inside the training command
    return max(1, int(minutes * 60 * 0.97 / step_seconds))


def train(config: str, work_dir: str, args, fit_minutes=None, val_interval=None,
          cfg_options=()):
    """Train ``config`` into ``work_dir``; returns (command, last checkpoint, run facts).

    With ``fit_minutes`` a probe run times the step first and the iterations are fitted to
    that wall-clock budget; otherwise ``--max-iters``/``--budget-minutes`` apply.
    """
    max_iters, budget_minutes, probe = args.max_iters, args.budget_minutes, None
    if fit_minutes:
        step = seconds_per_iteration(config, work_dir + '_probe', args.probe_iters, cfg_options)
        max_iters, budget_minutes = iterations_for(fit_minutes, step), fit_minutes
        probe = dict(seconds_per_iter=round(step, 3), probe_iters=args.probe_iters)
    cmd = ['python', 'tools/train.py', config, '--work-dir', work_dir,
           '--max-iters', str(max_iters), '--budget-minutes', str(budget_minutes)]
    if fit_minutes:  # the probe's guess is corrected once the run has timed its own steps
        cmd.append('--refit-to-budget')
    if val_interval is not None:
        cmd += ['--val-interval', str(val_interval)]
    if args.score_checkpoints:
        cfg_options = list(cfg_options) + checkpoint_options(max_iters, args.score_checkpoints)
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    # a fresh folder: a stale last_checkpoint or iter_*.pth of an earlier run must not be
    # mistaken for this run's (its score, its learning-curve points)
    shutil.rmtree(osp.join(REPO, work_dir), ignore_errors=True)
    t0 = time.time()
    run([sys.executable] + cmd[1:])
    minutes = (time.time() - t0) / 60
    with open(osp.join(REPO, work_dir, 'last_checkpoint')) as f:
        checkpoint = osp.relpath(f.read().strip(), REPO)
    iters = checkpoint_iteration(checkpoint)
    refits = []
    refit_record = osp.join(REPO, work_dir, 'time_budget.json')
    if osp.isfile(refit_record):  # written by the time-budget hook when it re-fitted
        with open(refit_record) as f:
            refits = json.load(f)['refits']
        if refits:
            max_iters = refits[-1]['new_max_iters']
    return cmd, checkpoint, dict(iterations=iters, max_iters=max_iters,
                                 budget_minutes=budget_minutes, probe=probe, refits=refits,
                                 minutes=round(minutes, 1))


def train_first_stage(args) -> dict:
    """Stage 1 of the two-stage recipe: the float model the rows start from, trained and scored
    (its metrics show what binarizing it costs)."""
    work_dir = osp.join(args.work_root, config_name(args.first_stage))
    cmd, checkpoint, facts = train(args.first_stage, work_dir, args,
                                   fit_minutes=args.first_stage_minutes, val_interval=0)
    return dict(facts, config=args.first_stage, command=' '.join(cmd), checkpoint=checkpoint,
                metrics=test(args.first_stage, checkpoint, work_dir)[1],
                train_curve=latest_scalars(osp.join(REPO, work_dir))[0])


def test(config: str, checkpoint: str, work_dir: str):
    """(command, metrics) of tools/test.py on ``checkpoint``."""
    cmd = ['python', 'tools/test.py', config, checkpoint, '--work-dir', work_dir]
    run([sys.executable] + cmd[1:])
    with open(osp.join(REPO, work_dir, 'test_metrics.json')) as f:
        return cmd, json.load(f)


def checkpoint_options(max_iters: int, count: int) -> list:
    """``--cfg-options`` that keep ``count`` evenly spaced checkpoints of a run (one more is
    kept for a time-budget stop)."""
    return [f'default_hooks.checkpoint.interval={-(-max_iters // count)}',
            f'default_hooks.checkpoint.max_keep_ckpts={count + 1}']


def checkpoint_iteration(path: str) -> int:
    return int(osp.splitext(osp.basename(path))[0].split('_')[-1])


def score_checkpoints(config: str, work_dir: str, known=()) -> list:
    """[(iteration, metrics)] of every ``iter_*.pth`` in ``work_dir`` not in ``known``.

    Each is tested into its own folder, so the row's ``test_metrics.json`` stays untouched.
    """
    curve = []
    for ckpt in sorted(glob.glob(osp.join(REPO, work_dir, 'iter_*.pth')),
                       key=checkpoint_iteration):
        it = checkpoint_iteration(ckpt)
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
            stage['train_curve'] = latest_scalars(osp.join(REPO, work_dir))[0]


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
        t0 = time.time()
        run([sys.executable] + pretrain_cmd[1:])
        pretrain = dict(minutes=round((time.time() - t0) / 60, 1))
        summary = pretrain_summary(config)
        pretrain.update(val_accuracy=summary['val_accuracy'], iterations=summary['iterations'])
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
    train_curve, val_curve = latest_scalars(osp.join(REPO, work_dir))
    return dict(config=config, name=name, task=task_of(config), iterations=facts['iterations'],
                max_iters=facts['max_iters'], budget_minutes=facts['budget_minutes'],
                probe=facts['probe'], refits=facts.get('refits') or [],
                train_minutes=facts['minutes'], pretrain=pretrain,
                first_stage=first_stage, metrics=metrics,
                commands=commands + [' '.join(train_cmd), ' '.join(test_cmd)],
                train_curve=train_curve, val_curve=val_curve,
                cpu=_cpu_name(), date=time.strftime('%Y-%m-%d'))


def pretrain_summary(config: str) -> dict:
    """The json tools/pretrain_backbone.py writes beside the config's ``load_from``."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config), import_custom_modules=False)
    if not cfg.get('load_from'):
        raise SystemExit(f'error: {config} has no load_from for a pretrained backbone')
    with open(osp.join(REPO, osp.splitext(cfg.load_from)[0] + '.json')) as f:
        return json.load(f)


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip() + f' ({os.cpu_count()} cores)'
    except OSError:
        pass
    return 'unknown CPU'


def _metric(metrics: dict, key: str):
    for k, v in metrics.items():  # mmseg prefixes nothing, mmdet 'coco/..'; match the tail
        if k == key or k.endswith('/' + key):
            return v
    return None


def table_order(row):
    """Rows grouped by detector/segmentor (the name's first part), float twin first."""
    return row['name'].split('_')[0], not row['config'].startswith('configs/baselines/'), \
        row['name']


def render_markdown(rows) -> str:
    out = ['# Results on the built-in digits dataset', '',
           'Measured by `tools/results_table.py` (one row = the two commands shown, run on an '
           'otherwise idle machine). "Minutes" is wall-clock time of the training command, '
           'including validation during training, plus backbone pretraining or the float '
           'first stage where listed. '
           'Regenerate the page with `python tools/results_table.py --render-only`.', '']
    for task in ('detection', 'segmentation'):
        task_rows = sorted((r for r in rows if r['task'] == task), key=table_order)
        if not task_rows:
            continue
        cols = METRICS[task]
        out += [f'## {task.capitalize()}', '',
                '| config | iterations (of max) | minutes | '
                + ' | '.join(c[1] for c in cols) + ' | machine, date |',
                '|---|---|---|' + '---|' * len(cols) + '---|']
        for r in task_rows:
            vals = []
            for key, _ in cols:
                v = _metric(r['metrics'], key)
                fmt = '{:.3f}' if task == 'detection' else '{:.2f}'
                vals.append('n/a' if v is None else fmt.format(v))
            minutes = f'{r["train_minutes"]}'
            if r.get('pretrain'):
                p = r['pretrain']
                minutes = (f'{round(p["minutes"] + r["train_minutes"], 1)} ({p["minutes"]} '
                           f'pretrain, {p["val_accuracy"]:.0f}% digit acc. + '
                           f'{r["train_minutes"]})')
            elif r.get('first_stage'):
                fs = r['first_stage']
                minutes = (f'{round(fs["minutes"] + r["train_minutes"], 1)} ({fs["minutes"]} '
                           f'float stage 1 + {r["train_minutes"]})')
            iters = f'{r["iterations"]} ({r["max_iters"]})'
            if r.get('refits'):  # re-fitted to the budget by the run: its own step time
                iters += f', {r["refits"][-1]["seconds_per_iter"]:.2f} s/it'
            elif r.get('probe'):  # iterations fitted to a time budget: at the probe's step time
                iters += f', {r["probe"]["seconds_per_iter"]:.2f} s/it'
            out.append(f'| `{r["name"]}` | {iters} | '
                       f'{minutes} | ' + ' | '.join(vals)
                       + f' | {r["cpu"]}, {r["date"]} |')
        notes = [f'- `{r["name"]}`: {r["note"]}' for r in task_rows if r.get('note')]
        notes += [f'- `{r["name"]}`: {first_stage_note(r["first_stage"], cols)}'
                  for r in task_rows if r.get('first_stage')]
        if notes:
            out += ['', 'Notes:', ''] + notes
        out += ['', f'![{task} learning curves]({task}_curves.png)', '', 'Commands:', '']
        for r in task_rows:
            out.append(f'- `{r["name"]}`: ' + ' then '.join(f'`{c}`' for c in r['commands']))
        out.append('')
    return '\n'.join(out)


def first_stage_note(stage: dict, cols) -> str:
    scores = ', '.join(f'{label} {_metric(stage["metrics"], key):.3f}' for key, label in cols
                       if _metric(stage['metrics'], key) is not None)
    return (f'two-stage recipe: starts from the float stage-1 model '
            f'`{config_name(stage["config"])}` ({stage["iterations"]} '
            f'iterations, {stage["minutes"]} min; {scores} before binarization)')


def curve_points(stage: dict, minutes: float, key: str, offset: float):
    """(minute, loss) and (minute, metric) points of one training stage: iterations are mapped
    to wall-clock minutes at the stage's mean pace, after ``offset`` minutes of earlier stages."""
    pace = minutes / max(stage['iterations'], 1)
    loss = [(offset + it * pace, v) for it, v in stage.get('train_curve') or []]
    scored = list(stage.get('val_curve') or []) + list(stage.get('checkpoint_curve') or [])
    scored.append((stage['iterations'], stage['metrics']))
    vals = {(offset + it * pace, _metric(m, key)) for it, m in scored}
    return loss, sorted((t, v) for t, v in vals if v is not None)


def render_curves(rows, task: str, path: str):
    """Training loss and validation metric against training minutes (rows at one wall-clock
    budget compare at equal time). A first stage is drawn dashed before its binary stage;
    pretraining has no such curve and only shifts the row right by its minutes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    task_rows = sorted((r for r in rows if r['task'] == task), key=table_order)
    if not task_rows:
        return
    key, label = METRICS[task][-1] if task == 'detection' else METRICS[task][0]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for i, r in enumerate(task_rows):
        color = colors[i % len(colors)]  # one colour per row, for both its stages
        offset = 0.0
        if r.get('first_stage'):
            fs = r['first_stage']
            loss, vals = curve_points(fs, fs['minutes'], key, 0.0)
            for ax, pts, marker in ((ax_loss, loss, None), (ax_val, vals, 'o')):
                if pts:
                    ax.plot(*zip(*pts), '--', marker=marker, color=color,
                            label=f'{r["name"]}: float stage 1')
            offset = fs['minutes']
        elif r.get('pretrain'):
            offset = r['pretrain']['minutes']  # pretraining has no detection/seg curve
        loss, vals = curve_points(r, r['train_minutes'], key, offset)
        for ax, pts, marker in ((ax_loss, loss, None), (ax_val, vals, 'o')):
            if pts:
                ax.plot(*zip(*pts), marker=marker, color=color, label=r['name'])
    xlabel = 'training minutes (iterations at each stage\'s mean pace)'
    ax_loss.set(xlabel=xlabel, ylabel='training loss', title='training loss')
    ax_val.set(xlabel=xlabel, ylabel=label, title=f'validation {label}')
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
    ax_val.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(render_markdown(rows))
    for task in METRICS:
        render_curves(rows, task, osp.join(out_dir, f'{task}_curves.png'))
    print(render_markdown(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
