#!/usr/bin/env python
"""Train a detector (mmdet) or segmentor (mmseg) from a config; mmdet's train.py arguments.

    python tools/train.py configs/bireal/faster-rcnn_bireal18_fpn_digits.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume          # last checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/iter_500.pth        # a given one
    python tools/train.py CONFIG --max-iters 1000 --budget-minutes 25     # budgeted run
    python tools/train.py CONFIG --max-iters 1000 --budget-minutes 25 --refit-to-budget
    python tools/train.py CONFIG --seed 0 --deterministic                 # reproducible
    bash tools/dist_train.sh CONFIG 2                                     # 2 processes, gloo

The task is read from the config's ``default_scope`` (``mmdet`` or ``mmseg``). Bad input
(missing data, malformed annotations, unknown ``--cfg-options`` keys, incompatible checkpoints)
ends with one ``error:`` line and exit code 2; ``--debug`` shows the traceback instead.
The work is done by ``bnn_tasks.jobs.train``, which records ``train_result.json``.
"""
import argparse

from bnn_tasks.cli import add_common_args, config_from_args, exit_process, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a bnn_tasks detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or (no value) from the latest checkpoint '
        'in the work dir')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size (mmdet configs)')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip validation during training')
    parser.add_argument('--max-iters', type=int,
                        help='train this many iterations: the warm-up and decay of the '
                        "config's schedule are fitted to them (not just cut off)")
    parser.add_argument('--val-interval', type=int,
                        help='with --max-iters: validate every N iterations (learning curves); '
                        '0: no validation inside training')
    parser.add_argument('--budget-minutes', type=float,
                        help='stop after this much wall-clock training time; the last '
                        'iteration is checkpointed')
    parser.add_argument('--refit-to-budget', action='store_true',
                        help='with --budget-minutes: once the step time is measured (at 10%% '
                        'and 50%% of the budget), stretch or shrink the rest of the schedule '
                        'so that it ends with the budget (--max-iters is then only the first '
                        'guess)')
    parser.add_argument('--seed', type=int,
                        help="random seed (the config's randomness.seed); recorded in every "
                        'checkpoint and result')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (randomness.deterministic)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from bnn_tasks import jobs
    cfg = config_from_args(args)
    jobs.prepare_training(
        cfg, args.config, max_iters=args.max_iters, val_interval=args.val_interval,
        budget_minutes=args.budget_minutes, refit_to_budget=args.refit_to_budget,
        no_validate=args.no_validate, auto_scale_lr=args.auto_scale_lr, seed=args.seed,
        deterministic=True if args.deterministic else None)
    return jobs.train(cfg, args.config, resume=args.resume)


if __name__ == '__main__':
    exit_process(run_tool(main))
