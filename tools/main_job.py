#!/usr/bin/env python
"""The main job: train, score and deploy a 1-bit detector on the built-in digits data.

It follows the float-to-binary recipe (``tools/train.py --two-stage``, docs/training.md), the
best measured way to a binary detector here, and runs every step as one of the repository's own
tools, printed before it runs, so each can be rerun alone:

1. make the digits dataset if it is absent (``tools/make_digits_dataset.py``);
2. train (``tools/train.py CONFIG --two-stage``): stage 1 is the Bi-Real-18 Faster R-CNN with
   float weights and clip(-1, 1) activations, stage 2 binarizes it (sign activations, binary
   weights) and fine-tunes it from stage 1's weights (``--distill``: also distilled from the
   frozen stage 1, measured worse at 40 minutes); the iterations and the
   wall-clock cap are split between the stages by the recipe;
3. score the binary detector: COCO mAP and VOC mAP@0.5 on the validation split
   (``tools/test.py``);
4. export it to ONNX with every binary conv as one bit-packed ``bnn_tasks::BinaryConv2d`` node,
   and its float twin for comparison (``tools/deploy.py``);
5. score the ONNX model in ONNX Runtime with the same pipeline and metrics
   (``tools/test.py MODEL.onnx``);
6. time the bit-packed detector against its float twin (ONNX Runtime, 1 thread);
7. print both scores, both file sizes and both latencies, and write them to
   ``WORK_DIR/summary.json``.

    python tools/main_job.py [--max-iters 1600 --budget-minutes 28] [--work-dir DIR]
                             [--distill] [--one-stage]

``--one-stage`` trains ``--config`` from scratch instead (no float stage).
"""
import argparse
import json
import os
import os.path as osp
import sys

from bnn_tasks.jobs import read_result, run_step, test_command

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_DATA = osp.join(REPO, 'data/digits')
BINARY_CONFIG = osp.join(REPO, 'configs/bireal/faster-rcnn_bireal18_fpn_digits.py')
EXIT_BAD_INPUT = 2


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=BINARY_CONFIG, help='the binary detector')
    p.add_argument('--max-iters', type=int, default=1600,
                   help='training iterations of both stages (each schedule is fitted to its '
                   'share)')
    p.add_argument('--budget-minutes', type=float, default=28.0,
                   help='hard cap on the wall-clock training time of both stages (a stage '
                   'that reaches its share stops early and keeps a checkpoint)')
    p.add_argument('--first-stage-fraction', type=float,
                   help="the float stage's share of iterations and minutes (default: the "
                   "recipe's)")
    # measured at 40 minutes (docs/results/recipe): without distillation 0.837 VOC mAP@0.5,
    # distilled (raw feature MSE) 0.749
    p.add_argument('--distill', action='store_true',
                   help='stage 2 distilled from stage 1 (default: stage 2 only loads stage 1)')
    p.add_argument('--one-stage', action='store_true',
                   help='train the binary config from scratch (no float stage)')
    p.add_argument('--data', default=DEFAULT_DATA, help='digits dataset folder')
    p.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs/main_job'))
    p.add_argument('--threads', type=int, default=2, help='ONNX Runtime intra-op threads')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='passed to every train/test/deploy step (keys must exist)')
    args = p.parse_args(argv)
    if args.one_stage and (args.distill or args.first_stage_fraction is not None):
        p.error('--distill and --first-stage-fraction belong to the two-stage recipe, '
                'not --one-stage')
    # the tools run in the repository: user paths (relative to the caller) are rebased there
    for name in ('config', 'data', 'work_dir'):
        setattr(args, name, repo_path(getattr(args, name)))
    return args


def repo_path(path: str) -> str:
    """``path`` relative to the repository when inside it (short printed commands)."""
    path = osp.abspath(path)
    rel = osp.relpath(path, REPO)
    return path if rel.startswith('..') else rel


def run(cmd):
    run_step(cmd, REPO)


def ensure_dataset(data_root: str):
    if osp.exists(osp.join(REPO, data_root, 'annotations', 'instances_val.json')):
        print(f'digits dataset found at {data_root}')
        return
    run(['python', 'tools/make_digits_dataset.py', '--out', data_root])


def data_options(data_root: str) -> list:
    """``--cfg-options`` pointing a digits config at another dataset folder."""
    if data_root == repo_path(DEFAULT_DATA):
        return []
    root = data_root.rstrip('/') + '/'
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')] \
        + [f'{evaluator}.0.ann_file={root}annotations/instances_val.json'
           for evaluator in ('val_evaluator', 'test_evaluator')]


def train(args, options) -> tuple:
    """Train the binary detector (two-stage recipe unless ``--one-stage``); returns (stage
    summary rows, the work dir of the binary model, its checkpoint)."""
    cmd = ['python', 'tools/train.py', args.config, '--work-dir', args.work_dir,
           '--max-iters', str(args.max_iters), '--budget-minutes', str(args.budget_minutes),
           '--val-interval', '0']  # the binary detector is scored once, after training
    if not args.one_stage:
        cmd.append('--two-stage')
        if not args.distill:
            cmd.append('--no-distill')
        if args.first_stage_fraction is not None:
            cmd += ['--first-stage-fraction', str(args.first_stage_fraction)]
    if options:
        cmd += ['--cfg-options', *options]
    run(cmd)
    result = read_result(osp.join(REPO, args.work_dir), 'train')
    runs = list(result['stages'].values()) if result.get('stages') else [result]
    stages = [dict(work_dir=repo_path(r['work_dir']), iterations=r['iterations'],
                   seed=r['seed'], train_minutes=round(r['train_minutes'], 1),
                   checkpoint=repo_path(r['checkpoint'])) for r in runs]
    return stages, stages[-1]['work_dir'], stages[-1]['checkpoint']


def test(config, checkpoint, work_dir, options, result_kind, extra=()) -> dict:
    run(test_command(config, checkpoint, work_dir, extra, options))
    metrics = read_result(osp.join(REPO, work_dir), result_kind)['metrics']
    return dict(coco_mAP=metrics['coco/bbox_mAP'], voc_mAP50=metrics['pascal_voc/mAP'])


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(osp.join(REPO, args.config)):
        print(f'error: config file {args.config!r} does not exist', file=sys.stderr)
        return EXIT_BAD_INPUT
    os.makedirs(osp.join(REPO, args.work_dir), exist_ok=True)
    ensure_dataset(args.data)
    options = data_options(args.data) + list(args.cfg_options)

    stages, binary_dir, ckpt = train(args, options)
    # the binary model's config exactly as trained (data root and other options included;
    # for the recipe, the student without its teacher) drives the test and the export
    trained_config = osp.join(binary_dir, osp.basename(args.config))
    torch_scores = test(trained_config, ckpt, binary_dir, [], 'test')

    export_dir = osp.join(args.work_dir, 'onnx')
    run(['python', 'tools/deploy.py', trained_config, ckpt, '--out', export_dir,
         '--name', 'detector'])
    with open(osp.join(REPO, export_dir, 'detector.json')) as f:
        exports = json.load(f)['exports']
    onnx_scores = test(trained_config, exports['binary']['path'], export_dir, [],
                       'test_onnx', extra=['--threads', str(args.threads)])

    latency = time_exports(exports, args.data)

    summary = dict(
        config=args.config, recipe='one_stage' if args.one_stage else 'two_stage',
        distill=args.distill, stages=stages, train_minutes=round(sum(s['train_minutes'] for s in stages), 1),
        pytorch=torch_scores, onnxruntime=onnx_scores,
        file_size_bytes=dict(binary=exports['binary']['size_bytes'],
                             float=exports['float']['size_bytes']),
        latency=latency)
    with open(osp.join(REPO, args.work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print_summary(summary)
    return 0


def time_exports(exports: dict, data_root: str, images: int = 4) -> dict:
    """The bit-packed detector against its float twin in ONNX Runtime: 1 thread, a short
    round-robin on the first validation images (tools/benchmark.py --detector is the full
    comparison, with other engines)."""
    from bnn_tasks.deploy.model_benchmark import binary_vs_float
    root = osp.join(REPO, data_root)
    with open(osp.join(root, 'annotations', 'instances_val.json')) as f:
        names = [image['file_name'] for image in json.load(f)['images'][:images]]
    print(f'timing the ONNX exports (1 thread, {len(names)} validation images)', flush=True)
    return binary_vs_float(osp.join(REPO, exports['binary']['path']),
                           osp.join(REPO, exports['float']['path']),
                           [osp.join(root, 'images', name) for name in names], threads=1)


def print_summary(summary: dict):
    mb = 1024 * 1024
    print('\n=== main job summary ===')
    print(f'{summary["config"]}, {summary["recipe"].replace("_", "-")} recipe'
          + (', distilled from the float stage' if summary['distill'] else ''))
    for i, stage in enumerate(summary['stages'], 1):
        print(f'stage {i}: {stage["iterations"]} iterations in {stage["train_minutes"]} min, '
              f'seed {stage["seed"]} ({stage["work_dir"]})')
    print(f'{"binary detector":28s} {"COCO mAP":>9s} {"VOC mAP@0.5":>12s}')
    for name in ('pytorch', 'onnxruntime'):
        m = summary[name]
        print(f'{name:28s} {m["coco_mAP"]:9.4f} {m["voc_mAP50"]:12.4f}')
    sizes = summary['file_size_bytes']
    print(f'ONNX file sizes: bit-packed {sizes["binary"] / mb:.2f} MiB, float '
          f'{sizes["float"] / mb:.2f} MiB ({sizes["float"] / sizes["binary"]:.1f}x)')
    t = summary.get('latency')
    if t:
        print(f'ONNX Runtime latency ({t["threads"]} thread, median of {t["runs"]} runs): '
              f'bit-packed {t["binary_ms"]:.1f} ms, float twin {t["float_ms"]:.1f} ms '
              f'(bit-packed {t["float_over_binary"]:.2f}x faster)')


if __name__ == '__main__':
    sys.exit(main())
