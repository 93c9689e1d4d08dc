"""Read mmengine's JSON training logs, plot their curves and summarise the training time.

mmengine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/<timestamp>.json`` (and
``scalars.json``): one JSON dict per line. A training line holds the smoothed scalars of the
last logging window (``loss``, ``loss_*``, ``lr``, ``time``, ``data_time``, ``memory``) with
``iter`` and ``step`` (the global iteration; ``epoch`` too in epoch-based runs); a validation
line holds the metrics (``coco/bbox_mAP``, ``pascal_voc/mAP``, ``mIoU``) with ``step``: the
iteration, or the epoch when metrics are logged by epoch. With ``log_with_hierarchy`` keys
carry a ``train/``/``val/`` prefix.
"""
import contextlib
import json
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

TRAIN_MARKERS = ('loss', 'lr')
BOOKKEEPING_KEYS = ('step', 'iter', 'epoch', 'time', 'data_time', 'memory')


class LogError(ValueError):
    """A log that cannot be read or lacks what was asked for (the message names it)."""


@dataclass
class RunLog:
    """The training and validation records of one JSON log, in file order."""
    path: str
    train: List[dict] = field(default_factory=list)
    val: List[dict] = field(default_factory=list)

    def keys(self) -> List[str]:
        seen = {}
        for rec in self.train + self.val:
            for k in rec:
                if k not in BOOKKEEPING_KEYS:
                    seen[k] = None
        return list(seen)

    def series(self, key: str) -> Tuple[List[float], List[float], str]:
        """``(iterations, values, matched key)`` of ``key`` (exact, else a unique
        ``.../key`` suffix: ``bbox_mAP`` finds ``coco/bbox_mAP``, as in mmdet's tool)."""
        name = resolve_key(self.keys(), key, self.path)
        records = self.train if any(name in r for r in self.train) else self.val
        xs, ys = [], []
        for rec in records:
            value = rec.get(name)
            if isinstance(value, (int, float)) and math.isfinite(value):
                xs.append(self._iteration(rec, records is self.val))
                ys.append(float(value))
        return xs, ys, name

    def _iteration(self, rec: dict, is_val: bool) -> float:
        step = rec.get('iter', rec.get('step', 0))
        if is_val and self.train and 'epoch' in self.train[-1]:
            # metrics logged by epoch: place them at the last iteration of that epoch
            ends = [r.get('step', r.get('iter', 0)) for r in self.train
                    if r.get('epoch') == rec.get('step')]
            if ends:
                return float(max(ends))
        return float(step)


def resolve_key(available: Sequence[str], key: str, where: str) -> str:
    if key in available:
        return key
    matches = [k for k in available if k.endswith('/' + key)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise LogError(f'key {key!r} is ambiguous in {where}: {", ".join(matches)}')
    raise LogError(f'{where} has no key {key!r}; it has: {", ".join(sorted(available))}')


def _strip_prefix(rec: dict) -> dict:
    return {k.split('/', 1)[1] if k.startswith(('train/', 'val/')) else k: v
            for k, v in rec.items()}


def is_train_record(rec: dict) -> bool:
    return any(k == m or k.startswith(m + '_') for k in rec for m in TRAIN_MARKERS)


def load_json_log(path: str) -> RunLog:
    """Parse one mmengine JSON log; a malformed line is an error naming the line."""
    if not osp.isfile(path):
        raise LogError(f'log {path!r} does not exist')
    run = RunLog(path)
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise LogError(f'{path} line {number} is not JSON ({e.msg}); expected '
                               'mmengine\'s vis_data/*.json log, one dict per line') from None
            if not isinstance(rec, dict):
                raise LogError(f'{path} line {number} is not a JSON object')
            rec = _strip_prefix(rec)
            (run.train if is_train_record(rec) else run.val).append(rec)
    if not run.train and not run.val:
        raise LogError(f'{path} holds no log records')
    return run


@dataclass
class TrainTime:
    """Seconds per iteration over the logging windows of a run."""
    path: str
    mean: float
    std: float
    slowest: Tuple[float, float]  # (iteration, seconds)
    fastest: Tuple[float, float]
    windows: int
    last_iteration: float

    @property
    def total_hours(self) -> float:
        return self.mean * self.last_iteration / 3600

    def format(self) -> str:
        return '\n'.join([
            f'-----Analyze train time of {self.path}-----',
            f'slowest window: ends at iteration {self.slowest[0]:g}, {self.slowest[1]:.4f} s/iter',
            f'fastest window: ends at iteration {self.fastest[0]:g}, {self.fastest[1]:.4f} s/iter',
            f'time std over {self.windows} logging windows: {self.std:.4f} s/iter',
            f'average iter time: {self.mean:.4f} s/iter',
            f'estimated training time for {self.last_iteration:g} iterations: '
            f'{self.total_hours * 60:.1f} min'])


def cal_train_time(run: RunLog, include_outliers: bool = False) -> TrainTime:
    """Statistics of the ``time`` scalar. The first logging window (data-loader start-up,
    first allocations) is left out unless ``include_outliers``, as in mmdet's tool."""
    records = [r for r in run.train if isinstance(r.get('time'), (int, float))]
    if not include_outliers and len(records) > 1:
        records = records[1:]
    if not records:
        raise LogError(f'{run.path} has no training records with a "time" value')
    times = [float(r['time']) for r in records]
    iters = [float(r.get('iter', r.get('step', i))) for i, r in enumerate(records)]
    mean = sum(times) / len(times)
    std = math.sqrt(sum((t - mean) ** 2 for t in times) / len(times))
    slow = max(range(len(times)), key=times.__getitem__)
    fast = min(range(len(times)), key=times.__getitem__)
    last = max(float(r.get('iter', r.get('step', 0))) for r in run.train)
    return TrainTime(run.path, mean, std, (iters[slow], times[slow]), (iters[fast], times[fast]),
                     len(times), last)


def plot_curves(runs: Sequence[RunLog], keys: Sequence[str], out: str,
                legend: Optional[Sequence[str]] = None, title: Optional[str] = None,
                style: Optional[str] = None) -> Dict[str, int]:
    """Plot ``keys`` of every run against the iteration into one image ``out``.

    Returns ``{legend label: number of points}``. Every (run, key) pair must exist.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    pairs = [(run, key) for run in runs for key in keys]
    if legend is not None and len(legend) != len(pairs):
        raise LogError(f'--legend needs {len(pairs)} labels (one per log and key), '
                       f'got {len(legend)}')
    curves = []
    for i, (run, key) in enumerate(pairs):
        xs, ys, name = run.series(key)
        if not xs:
            raise LogError(f'{run.path}: key {name!r} has no numeric values')
        label = legend[i] if legend is not None else (
            f'{osp.basename(run.path)}: {name}' if len(runs) > 1 else name)
        curves.append((label, xs, ys))
    context = plt.style.context(style) if style else contextlib.nullcontext()
    with context:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for label, xs, ys in curves:
            ax.plot(xs, ys, label=label, marker='o' if len(xs) < 20 else None)
        ax.set_xlabel('iteration')
        ax.set_ylabel(keys[0] if len(keys) == 1 else 'value')
        if title:
            ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out, dpi=100)
        plt.close(fig)
    return {label: len(xs) for label, xs, _ in curves}



def latest_run_curves(work_dir: str):
    """``(train, val)`` of the newest run logged in ``work_dir`` (mmengine's
    ``<timestamp>/vis_data/scalars.json``): ``[(iteration, loss)]`` and
    ``[(iteration, {metric: value})]``; empty lists when nothing is logged."""
    import glob
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        return [], []
    run = load_json_log(logs[-1])
    train = [(rec['iter'], rec['loss']) for rec in run.train if 'loss' in rec and 'iter' in rec]
    val = [(rec['step'], {k: v for k, v in rec.items() if k != 'step'})
           for rec in run.val if 'step' in rec]
    return train, val
