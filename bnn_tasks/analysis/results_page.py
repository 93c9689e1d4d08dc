"""The results page of ``tools/results_table.py``: markdown table and learning curves.

Rendering only: it reads the rows ``results.json`` holds (one per trained config, written by
the tool) and never runs anything, so ``--render-only`` and the tests use it directly.
"""
import os.path as osp

from .markdown import markdown_table

# the headline metric of each task, and the columns of its table
METRICS = {
    'detection': [('coco/bbox_mAP', 'COCO mAP'), ('pascal_voc/mAP', 'VOC mAP@0.5')],
    # mmseg reports percentages
    'segmentation': [('mIoU', 'mIoU %'), ('mAcc', 'mAcc %'), ('aAcc', 'aAcc %')],
}
# the metric (a key of METRICS) a binary row is compared with its float twin by, and its curves
# plot
HEADLINE_METRIC = {'detection': 'pascal_voc/mAP', 'segmentation': 'mIoU'}
# hand-written analysis of the rows (why a row misses, what to try), kept beside results.json
# and appended to the page
DISCUSSION_FILE = 'discussion.md'


def config_name(config: str) -> str:
    """A config's file name without folder and extension: its row name and work dir."""
    return osp.splitext(osp.basename(config))[0]


def metric_value(metrics: dict, key: str):
    for k, v in metrics.items():  # mmseg prefixes nothing, mmdet 'coco/..'; match the tail
        if k == key or k.endswith('/' + key):
            return v
    return None


def headline(task: str):
    """``(key, label)`` of the task's headline metric."""
    key = HEADLINE_METRIC[task]
    return key, dict(METRICS[task])[key]


def _group(row) -> str:
    return row['name'].split('_')[0]


def _is_twin(row) -> bool:
    return row['config'].startswith('configs/baselines/')


def table_order(row):
    """Rows grouped by detector/segmentor (the name's first part), float twin first."""
    return _group(row), not _is_twin(row), row['name']


def float_twin(row, rows):
    """The float row a binary row is compared with: same detector/segmentor, same budget, same
    training precision (``amp``: bfloat16 autocast) (the newest if several); None for a float
    row or when none was measured."""
    if _is_twin(row):
        return None
    twins = [r for r in rows if _is_twin(r) and _group(r) == _group(row)
             and r.get('budget_minutes') == row.get('budget_minutes')
             and r.get('amp', False) == row.get('amp', False)]
    return max(twins, key=lambda r: r['date']) if twins else None


def share_of_twin(row, rows) -> str:
    """The row's headline metric as a percentage of its float twin's ('' without a twin)."""
    twin = float_twin(row, rows)
    if twin is None:
        return ''
    key = HEADLINE_METRIC[row['task']]
    mine, theirs = metric_value(row['metrics'], key), metric_value(twin['metrics'], key)
    if mine is None or not theirs:
        return ''
    # one decimal: a row at 89.6 % must not read as meeting a 90 % target
    return f'{100 * mine / theirs:.1f} %'


def row_minutes(row) -> str:
    """Minutes of all the row's training: pretraining and a float first stage, then the
    trained config, with the parts named."""
    parts, total = [], 0.0
    if row.get('pretrain'):
        p = row['pretrain']
        parts.append(f'{p["minutes"]} pretrain, {p["val_accuracy"]:.0f}% digit acc.')
        total += p['minutes']
    if row.get('first_stage'):
        parts.append(f'{row["first_stage"]["minutes"]} float stage 1')
        total += row['first_stage']['minutes']
    if not parts:
        return f'{row["train_minutes"]}'
    return f'{round(total + row["train_minutes"], 1)} ({" + ".join(parts)} + ' \
        f'{row["train_minutes"]})'


def machine_cell(row: dict) -> str:
    """CPU and date, and the machine's float matmul speed before/after the run when recorded
    (instances of one machine kind differ: a budget in minutes is not the same compute)."""
    cell = f'{row["cpu"]}, {row["date"]}'
    speed = row.get('matmul_gflops')
    if speed:
        cell += ', matmul ' + ' / '.join(f'{v:.0f}' for v in speed) + ' GFLOP/s'
    return cell


def render_markdown(rows) -> str:
    out = ['# Results on the built-in digits dataset', '',
           'Measured by `tools/results_table.py` (one row = the two commands shown, run on an '
           'otherwise idle machine). "Minutes" is wall-clock time of the training command, '
           'including validation during training, plus backbone pretraining or the float '
           'first stage where listed. Machine: where recorded, its float32 matmul speed '
           'just before and after the training (`bnn_tasks.machine.matmul_gflops`): two '
           'instances of one machine kind can differ by a third, which a budget in minutes '
           'turns into iterations. '
           'Regenerate the page with `python tools/results_table.py --render-only`.', '']
    for task in ('detection', 'segmentation'):
        task_rows = sorted((r for r in rows if r['task'] == task), key=table_order)
        if not task_rows:
            continue
        cols = METRICS[task]
        header = (['config', 'iterations (of max)', 'minutes'] + [c[1] for c in cols]
                  + [f'{headline(task)[1]} of the float twin', 'machine, date'])
        cells = []
        for r in task_rows:
            vals = []
            for key, _ in cols:
                v = metric_value(r['metrics'], key)
                vals.append('n/a' if v is None else _format_metric(v, task))
            iters = f'{r["iterations"]} ({r["max_iters"]})'
            if r.get('refits'):  # re-fitted to the budget by the run: its own step time
                iters += f', {r["refits"][-1]["seconds_per_iter"]:.2f} s/it'
            elif r.get('probe'):  # iterations fitted to a time budget: at the probe's step time
                iters += f', {r["probe"]["seconds_per_iter"]:.2f} s/it'
            cells.append([f'`{r["name"]}`', iters, row_minutes(r)] + vals
                         + [share_of_twin(r, task_rows), machine_cell(r)])
        out += [f'## {task.capitalize()}', '', markdown_table(header, cells)]
        notes = [f'- `{r["name"]}`: {r["note"]}' for r in task_rows if r.get('note')]
        notes += [f'- `{r["name"]}`: {first_stage_note(r, cols)}'
                  for r in task_rows if r.get('first_stage')]
        if notes:
            out += ['', 'Notes:', ''] + notes
        out += ['', f'![{task} learning curves]({task}_curves.png)', '',
                'Learning curves per detector/segmentor: training loss (log scale) and the '
                'headline metric against training minutes, iterations placed at each stage\'s '
                'mean pace; dashed: the float stage 1 of a two-stage row.',
                '', 'Commands:', '']
        for r in task_rows:
            out.append(f'- `{r["name"]}`: ' + ' then '.join(f'`{c}`' for c in r['commands']))
        out.append('')
    return '\n'.join(out)


def _format_metric(value: float, task: str) -> str:
    return f'{value:.3f}' if task == 'detection' else f'{value:.2f}'  # mmseg: percentages


def distillation_teacher(distill: dict):
    """The config name of a distilled run's teacher when it is another model (e.g. the float
    twin), None when it is the run's own float stage (recorded as a description, not a path)."""
    teacher = str(distill.get('teacher_config') or '')
    return config_name(teacher) if teacher.endswith('.py') else None


def binary_stage_lr_factor(recipe: dict):
    """The binary stage's learning-rate factor of a two-stage row when it is not the recipe's
    default, else None (rows before the option ran at the default and did not record it)."""
    from ..engine.recipe import BINARY_STAGE_LR_FACTOR
    factor = recipe.get('binary_stage_lr_factor')
    return factor if factor is not None and factor != BINARY_STAGE_LR_FACTOR else None


def first_stage_note(row: dict, cols) -> str:
    stage = row['first_stage']
    values = [(label, metric_value(stage['metrics'], key)) for key, label in cols]
    scores = ', '.join(f'{label} {_format_metric(v, row["task"])}' for label, v in values
                       if v is not None)
    facts = f'{stage["iterations"]} iterations, {stage["minutes"]} min; {scores} before ' \
        'binarization'
    recipe = row.get('recipe')
    if recipe:  # tools/train.py --two-stage: the float stage of the same config
        distill = recipe.get('distill')
        how = 'no distillation'
        if distill:
            options = ', '.join(f'{k}={v}' for k, v in sorted(distill.get('options', {}).items()))
            teacher = distillation_teacher(distill)
            source = f'`{teacher}`' if teacher else 'it'
            how = f'distilled from {source}' + (f' ({options})' if options else '')
            if distill.get('float_stage'):
                how += ' in both stages'
        lr_factor = binary_stage_lr_factor(recipe)
        if lr_factor is not None:
            how += f", binary stage at {lr_factor:g}x the config's learning rate"
        if recipe.get('binarize_warmup'):
            how += f", binarized gradually over the first " \
                f"{round(100 * recipe['binarize_warmup'])} % of the binary stage"
        fraction = recipe.get('first_stage_fraction')
        if fraction is not None:  # older rows did not record their split
            facts = f'{round(100 * fraction)} % of the budget, ' + facts
        if recipe.get('float_stage_activations') == 'binary':
            facts = 'float weights, binary activations, ' + facts
        return f'two-stage recipe, {how}: float stage 1 ({facts})'
    return f'two-stage recipe: starts from the float stage-1 model ' \
        f'`{config_name(stage["config"])}` ({facts})'



def curve_points(stage: dict, minutes: float, key: str, offset: float):
    """(minute, loss) and (minute, metric) points of one training stage: iterations are mapped
    to wall-clock minutes at the stage's mean pace, after ``offset`` minutes of earlier stages."""
    pace = minutes / max(stage['iterations'], 1)
    loss = [(offset + it * pace, v) for it, v in stage.get('train_curve') or []]
    scored = list(stage.get('val_curve') or []) + list(stage.get('checkpoint_curve') or [])
    scored.append((stage['iterations'], stage['metrics']))
    vals = {(offset + it * pace, metric_value(m, key)) for it, m in scored}
    return loss, sorted((t, v) for t, v in vals if v is not None)


def rows_by_group(rows, task: str) -> dict:
    """The task's rows by detector/segmentor (the name's first part), in table order."""
    groups = {}
    for r in sorted((r for r in rows if r['task'] == task), key=table_order):
        groups.setdefault(_group(r), []).append(r)
    return groups


def render_curves(rows, task: str, path: str):
    """Training loss and validation metric against training minutes (rows at one wall-clock
    budget compare at equal time), one pair of panels per detector/segmentor so that a panel
    holds a handful of rows. A first stage is drawn dashed before its binary stage, in the
    row's colour; pretraining has no such curve and only shifts the row right by its minutes.
    The loss axis is logarithmic: binarization makes the loss jump at the start of stage 2."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = rows_by_group(rows, task)
    if not groups:
        return
    key, label = headline(task)
    # iterations are placed at each stage's mean pace, so rows compare at equal wall-clock time
    xlabel = 'training minutes'
    fig, axes = plt.subplots(len(groups), 2, figsize=(13, 3.6 * len(groups)), squeeze=False)
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for (group, group_rows), (ax_loss, ax_val) in zip(groups.items(), axes):
        for i, r in enumerate(group_rows):
            color = colors[i % len(colors)]  # one colour per row, for both its stages
            offset = r['pretrain']['minutes'] if r.get('pretrain') else 0.0
            stages = []
            if r.get('first_stage'):
                stages.append((r['first_stage'], r['first_stage']['minutes'], '--', None))
            stages.append((r, r['train_minutes'], '-', r['name']))
            for stage, minutes, style, name in stages:
                loss, vals = curve_points(stage, minutes, key, offset)
                if loss:
                    ax_loss.plot(*zip(*loss), style, color=color, linewidth=1)
                if vals:
                    ax_val.plot(*zip(*vals), style, marker='o', markersize=4, color=color,
                                label=name)
                offset += minutes
        ax_loss.set(xlabel=xlabel, ylabel='training loss', yscale='log',
                    title=f'{group}: training loss (stage 1 dashed)')
        ax_val.set(xlabel=xlabel, ylabel=label, title=f'{group}: {label}')
        for ax in (ax_loss, ax_val):
            ax.grid(alpha=0.3)
        ax_val.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches='tight')
    plt.close(fig)


def write_results_page(rows, out_dir: str) -> str:
    """``results.md`` and one ``<task>_curves.png`` per task into ``out_dir``; returns the md.
    A ``discussion.md`` in ``out_dir`` (hand-written) ends the page."""
    markdown = render_markdown(rows)
    discussion = osp.join(out_dir, DISCUSSION_FILE)
    if osp.isfile(discussion):
        with open(discussion) as f:
            markdown = markdown.rstrip('\n') + '\n\n' + f.read().strip('\n') + '\n'
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(markdown)
    for task in METRICS:
        render_curves(rows, task, osp.join(out_dir, f'{task}_curves.png'))
    return markdown
