#!/usr/bin/env python
"""The main job: train, score and deploy a 1-bit detector on the built-in digits data.

1. make the digits dataset if it is absent (``tools/make_digits_dataset.py``);
2. train a Bi-Real-18 Faster R-CNN for a fixed iteration budget, capped by a wall-clock budget
   (``TrainTimeBudgetHook``), with mmengine's progress/ETA log;
3. evaluate it: COCO mAP and VOC mAP@0.5 on the validation split;
4. export it to ONNX with every binary conv as one bit-packed ``bnn_tasks::BinaryConv2d`` node,
   and the float twin for comparison (``tools/deploy.py``);
5. evaluate the ONNX model in ONNX Runtime with the same pipeline and metrics;
6. print both mAPs and both file sizes, and write them to ``WORK_DIR/summary.json``.

    python tools/main_job.py [--budget-minutes 25] [--max-iters 1000] [--work-dir DIR]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(REPO, 'configs/bireal/faster-rcnn_bireal18_fpn_digits.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--data', default='data/digits', help='digits dataset folder')
    p.add_argument('--work-dir', default='work_dirs/main_job')
    p.add_argument('--max-iters', type=int, default=1000,
                   help='training iterations (the schedule is fitted to them)')
    p.add_argument('--budget-minutes', type=float, default=25.0,
                   help='hard cap on training wall-clock time (stops early, keeps a checkpoint)')
    p.add_argument('--threads', type=int, default=2, help='ONNX Runtime intra-op threads')
    return p.parse_args(argv)


def run(cmd):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def ensure_dataset(data_root: str):
    if osp.exists(osp.join(data_root, 'annotations', 'instances_val.json')):
        print(f'digits dataset found at {data_root}')
        return
    run([sys.executable, 'tools/make_digits_dataset.py', '--out', osp.abspath(data_root)])


def configure(cfg, args):
    """Point the config at the data, fit the schedule to the budget, score with COCO + VOC."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data
    cfg.work_dir = args.work_dir
    from bnn_tasks.engine import add_time_budget, fit_schedule
    # the test below scores the final weights: no validation inside training
    fit_schedule(cfg, args.max_iters, val_interval=0)
    add_time_budget(cfg, args.budget_minutes)
    ann = osp.join(args.data, 'annotations', 'instances_val.json')
    cfg.test_evaluator = [
        dict(type='CocoMetric', ann_file=ann, metric='bbox'),
        # VOC mAP@0.5 ('area' = all-point interpolated AP, as VOC2010+)
        dict(type='VOCMetric', metric='mAP', iou_thrs=0.5, eval_mode='area')]
    cfg.val_evaluator = cfg.test_evaluator
    return cfg


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    ensure_dataset(args.data)

    import bnn_tasks  # noqa: F401  (registries, stack fixes)
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = configure(Config.fromfile(args.config), args)
    cfg.dump(osp.join(args.work_dir, 'main_job_config.py'))
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    runner.train()
    train_minutes = (time.time() - t0) / 60
    torch_metrics = runner.test()
    with open(osp.join(args.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()

    export_dir = osp.join(args.work_dir, 'onnx')
    config_path = osp.join(args.work_dir, 'main_job_config.py')
    run([sys.executable, 'tools/deploy.py', config_path, checkpoint, '--out', export_dir,
         '--name', 'detector'])
    with open(osp.join(export_dir, 'detector.json')) as f:
        exports = json.load(f)['exports']

    from bnn_tasks.deploy.runtime import evaluate_onnx
    onnx_metrics = evaluate_onnx(cfg, exports['binary']['path'], threads=args.threads)

    summary = dict(
        config=osp.relpath(args.config, REPO), iterations=runner.iter,
        train_minutes=round(train_minutes, 1),
        pytorch=dict(coco_mAP=torch_metrics['coco/bbox_mAP'],
                     voc_mAP50=torch_metrics['pascal_voc/mAP']),
        onnxruntime=dict(coco_mAP=onnx_metrics['coco/bbox_mAP'],
                         voc_mAP50=onnx_metrics['pascal_voc/mAP']),
        file_size_bytes=dict(binary=exports['binary']['size_bytes'],
                             float=exports['float']['size_bytes']))
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    mb = 1024 * 1024
    print('\n=== main job summary ===')
    print(f'trained {summary["iterations"]} iterations in {summary["train_minutes"]} min '
          f'({summary["config"]})')
    print(f'{"":12s} {"COCO mAP":>9s} {"VOC mAP@0.5":>12s}')
    for name in ('pytorch', 'onnxruntime'):
        m = summary[name]
        print(f'{name:12s} {m["coco_mAP"]:9.4f} {m["voc_mAP50"]:12.4f}')
    sizes = summary['file_size_bytes']
    print(f'ONNX file sizes: bit-packed {sizes["binary"] / mb:.2f} MiB, float '
          f'{sizes["float"] / mb:.2f} MiB ({sizes["float"] / sizes["binary"]:.1f}x)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
