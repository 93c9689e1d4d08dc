"""The model-zoo table: each config's cost (OPs, BOPs, FLOPs, size) beside what was measured.

Measured numbers are read from the results files under ``docs/results`` (written by
``tools/results_table.py`` and ``tools/benchmark.py``) and reported only where they exist;
every other cell is a dash. Cost reports come from ``bnn_tasks.analysis.count_model``.
"""
import glob
import json
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..machine import recorded_generation
from .cost import Cost, CostReport, human
from .markdown import markdown_table
from .results_page import binary_stage_lr_factor, distillation_teacher

DASH = '-'


@dataclass
class MeasuredRun:
    """One recorded training run of a config and its scores."""
    metrics: Dict[str, float]
    minutes: float  # all training stages: pretraining, first stage, this config
    iterations: Optional[int]
    source: str
    training: str = 'one stage'  # how it was trained, see ``training_label``

    def cell(self, key: str, scale: float = 1.0, digits: int = 3) -> Optional[str]:
        value = self.metrics.get(key)
        if not isinstance(value, (int, float)) or value < 0:
            return None
        return f'{value * scale:.{digits}f}'


def training_label(entry: dict) -> str:
    """``one stage``, ``two-stage`` or ``two-stage, distilled [from TEACHER]``, with the float
    stage's share of the budget when it is not the recipe's, its activations when they are
    binary, ``bf16 autocast`` for ``--amp`` runs and the AMD core generation where the row
    recorded it: what tells two recorded runs of one config apart."""
    label = _recipe_label(entry)
    if entry.get('amp'):
        label += ', bf16 autocast'
    # a Zen 5 buys 1.5x the bf16 iterations of a Zen 4
    generation = recorded_generation(entry.get('cpu') or '')
    return f'{label}, {generation}' if generation else label


def _recipe_label(entry: dict) -> str:
    from bnn_tasks.engine.recipe import FIRST_STAGE_FRACTION
    recipe = entry.get('recipe') or {}
    if not (recipe.get('two_stage') or entry.get('first_stage')):
        return 'one stage'
    label = 'two-stage'
    fraction = recipe.get('first_stage_fraction')
    if fraction is not None and fraction != FIRST_STAGE_FRACTION:
        label += f', {round(100 * fraction)} % float stage'
    if recipe.get('float_stage_activations') == 'binary':
        label += ', binary-activation float stage'
    lr_factor = binary_stage_lr_factor(recipe)
    if lr_factor is not None:
        label += f", binary stage at {lr_factor:g}x the config's lr"
    if recipe.get('binarize_warmup'):
        label += f", {round(100 * recipe['binarize_warmup'])} % binarization warm-up"
    distill = recipe.get('distill')
    if not distill:
        return label
    teacher = distillation_teacher(distill)
    return f'{label}, distilled from {teacher}' if teacher else f'{label}, distilled'


def load_measured(results_dir: str) -> Dict[str, List[MeasuredRun]]:
    """``{config path: [runs]}`` from every results list (``[{"config", "metrics", ...}]``)."""
    runs: Dict[str, List[MeasuredRun]] = {}
    for path in sorted(glob.glob(osp.join(results_dir, '**', '*.json'), recursive=True)):
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, list):
            continue
        for entry in data:
            if not isinstance(entry, dict) or 'config' not in entry or not entry.get('metrics'):
                continue
            minutes = float(entry.get('train_minutes') or 0)
            for stage in ('first_stage', 'pretrain'):
                minutes += float((entry.get(stage) or {}).get('minutes') or 0)
            runs.setdefault(entry['config'], []).append(MeasuredRun(
                metrics=entry['metrics'], minutes=minutes, iterations=entry.get('iterations'),
                source=osp.relpath(path, osp.dirname(results_dir.rstrip('/'))),
                training=training_label(entry)))
    return runs


def load_backbone_latency(results_dir: str) -> List[dict]:
    """Whole-model latency records (``"models"`` of a benchmark.json), with their file."""
    records = []
    for path in sorted(glob.glob(osp.join(results_dir, '**', '*.json'), recursive=True)):
        with open(path) as f:
            data = json.load(f)
        if isinstance(data, dict) and isinstance(data.get('models'), list):
            for rec in data['models']:
                records.append(dict(rec, source=osp.relpath(path, osp.dirname(
                    results_dir.rstrip('/')))))
    return records


@dataclass
class ZooRow:
    config: str
    task: str
    report: CostReport
    runs: List[MeasuredRun] = field(default_factory=list)

    @property
    def backbone(self) -> Cost:
        total = Cost()
        for row in self.report.rows:
            if row.name == 'backbone' or row.name.startswith('backbone.'):
                total.add(row.cost)
        return total


def _runs_cell(runs: List[MeasuredRun], key: str, scale: float = 1.0, digits: int = 3) -> str:
    cells = [(run.cell(key, scale, digits), run) for run in runs]
    cells = [f'{value} ({run.minutes:.0f} min, {run.training})'
             for value, run in cells if value is not None]
    return '; '.join(cells) if cells else DASH


def _shape(report: CostReport) -> str:
    return 'x'.join(str(v) for v in report.input_shape[2:]) if report.input_shape else DASH


ZOO_HEADER = ['config', 'task', 'input', 'OPs', 'BOPs', 'FLOPs', 'backbone OPs',
              'binary / float params', 'size MB', 'COCO mAP', 'VOC mAP@0.5', 'mIoU', 'latency']


def _zoo_cells(row: ZooRow) -> List[str]:
    t = row.report.total
    det = row.task == 'detection'
    return [f'`{row.config}`', row.task, _shape(row.report), human(t.ops), human(t.bops),
            human(t.flops), human(row.backbone.ops),
            f'{t.binary_params / 1e6:.2f}M / {t.float_params / 1e6:.2f}M',
            f'{t.storage_mb:.2f}',
            _runs_cell(row.runs, 'coco/bbox_mAP') if det else DASH,
            _runs_cell(row.runs, 'pascal_voc/mAP') if det else DASH,
            DASH if det else _runs_cell(row.runs, 'mIoU', 1.0, 1),
            DASH]


def render_zoo_rows(rows: List[ZooRow]) -> List[str]:
    return markdown_table(ZOO_HEADER, [_zoo_cells(row) for row in rows]).split('\n')


def render_latency(records: List[dict], backbone_costs: Dict[str, CostReport]) -> List[str]:
    """Whole-backbone latency, one row per (model, threads, implementation)."""
    if not records:
        return []
    header = ['model', 'OPs', 'BOPs', 'FLOPs', 'size MB', 'threads', 'implementation',
              'median ms', 'vs ORT float', 'source']
    cells = []
    for rec in records:
        if rec.get('impl', '').startswith('file_size') or rec.get('median_s') in (None,):
            continue
        median = rec.get('median_s')
        if not isinstance(median, (int, float)) or median != median:  # NaN: not a timing
            continue
        report = backbone_costs.get(rec['model'])
        t = report.total if report is not None else None
        cost = ([human(t.ops), human(t.bops), human(t.flops), f'{t.storage_mb:.2f}']
                if t is not None else [DASH] * 4)
        speedup = rec.get('speedup_vs_ort_float')
        cells.append([rec['model']] + cost + [str(rec.get('threads', DASH)),
                                              rec.get('impl', DASH), f'{median * 1000:.1f}',
                                              f'{speedup:.2f}x' if speedup else DASH,
                                              rec['source']])
    return markdown_table(header, cells).split('\n')


def file_sizes(records: List[dict]) -> Dict[str, Dict[str, int]]:
    """``{model: {impl: bytes}}`` of the exported files a benchmark recorded."""
    out: Dict[str, Dict[str, int]] = {}
    for rec in records:
        if rec.get('impl', '').startswith('file_size') and rec.get('size_bytes'):
            out.setdefault(rec['model'], {})[rec['impl']] = int(rec['size_bytes'])
    return out
