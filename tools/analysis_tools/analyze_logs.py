#!/usr/bin/env python
"""Plot training curves and summarise training time from mmengine JSON logs (mmdet's tool).

    python tools/analysis_tools/analyze_logs.py plot_curve \
        work_dirs/x/20261127_101500/vis_data/20261127_101500.json --keys loss loss_cls \
        --out losses.png
    python tools/analysis_tools/analyze_logs.py plot_curve A.json B.json --keys pascal_voc/mAP \
        --legend float binary --out map.png
    python tools/analysis_tools/analyze_logs.py cal_train_time work_dirs/x/*/vis_data/*.json

Logs are the ``vis_data/<timestamp>.json`` (or ``scalars.json``) files mmengine writes, one
JSON dict per line. ``--keys`` take the logged names (``loss``, ``loss_rpn_cls``, ``lr``,
``coco/bbox_mAP``, ``mIoU``...); a unique suffix is enough (``bbox_mAP``). Curves are plotted
against the iteration; the image is written with matplotlib's Agg backend.
"""
import argparse
import os
import os.path as osp
import sys

from bnn_tasks.cli import ToolError, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Analyze mmengine JSON training logs')
    sub = parser.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='plot curves of logged keys')
    plot.add_argument('json_logs', nargs='+', help='JSON logs (vis_data/*.json)')
    plot.add_argument('--keys', nargs='+', default=['loss'],
                      help='keys to plot (default: loss)')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--legend', nargs='+',
                      help='one label per (log, key) pair, in the order logs x keys')
    plot.add_argument('--style', help='a matplotlib style name, e.g. ggplot')
    plot.add_argument('--out', help='image to write (default: curves.png next to the first '
                      'log)')
    plot.add_argument('--debug', action='store_true', help='show full tracebacks')
    time = sub.add_parser('cal_train_time', help='seconds per iteration and total time')
    time.add_argument('json_logs', nargs='+', help='JSON logs (vis_data/*.json)')
    time.add_argument('--include-outliers', action='store_true',
                      help='include the first logging window (start-up) in the statistics')
    time.add_argument('--debug', action='store_true', help='show full tracebacks')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from bnn_tasks.analysis.logs import LogError, cal_train_time, load_json_log, plot_curves
    try:
        runs = [load_json_log(path) for path in args.json_logs]
        if args.task == 'cal_train_time':
            for run in runs:
                print(cal_train_time(run, args.include_outliers).format())
            return
        out = args.out or osp.join(osp.dirname(osp.abspath(args.json_logs[0])), 'curves.png')
        if osp.dirname(osp.abspath(out)):
            os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        if args.style:
            import matplotlib.style
            if args.style not in matplotlib.style.available:
                raise ToolError(f'--style {args.style!r} is not a matplotlib style; '
                                f'available: {", ".join(sorted(matplotlib.style.available))}')
        points = plot_curves(runs, args.keys, out, args.legend, args.title, args.style)
    except LogError as e:
        raise ToolError(str(e)) from None
    for label, n in points.items():
        print(f'{label}: {n} points')
    print(f'saved {out}')


if __name__ == '__main__':
    sys.exit(run_tool(main))
