#!/usr/bin/env python
"""Train a detector (mmdet) or segmentor (mmseg) from a config; mmdet's train.py arguments.

    python tools/train.py configs/bireal/faster-rcnn_bireal18_fpn_digits.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume          # last checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/iter_500.pth        # a given one
    python tools/train.py CONFIG --max-iters 1000 --budget-minutes 25     # budgeted run
    python tools/train.py CONFIG --max-iters 1000 --budget-minutes 25 --refit-to-budget
    python tools/train.py CONFIG --seed 0 --deterministic                 # reproducible
    python tools/train.py CONFIG --amp        # bfloat16 autocast (CPUs with AVX512-BF16/AMX)
    bash tools/dist_train.sh CONFIG 2                                     # 2 processes, gloo
    python tools/train.py BINARY_CONFIG --two-stage --max-iters 1600 --budget-minutes 40
        # float stage, then the binary stage distilled from it (WORK_DIR/stage1_float,
        # WORK_DIR/stage2_binary; bnn_tasks.engine.recipe)

The task is read from the config's ``default_scope`` (``mmdet`` or ``mmseg``). Bad input
(missing data, malformed annotations, unknown ``--cfg-options`` keys, incompatible checkpoints)
ends with one ``error:`` line and exit code 2; ``--debug`` shows the traceback instead.
The work is done by ``bnn_tasks.jobs.train``, which records ``train_result.json``.
"""
import argparse

from mmengine.config import DictAction

from bnn_tasks.cli import add_common_args, config_from_args, exit_process, run_tool
from bnn_tasks.engine.recipe import BINARY_STAGE_LR_FACTOR, FLOAT_STAGE_ACTIVATIONS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a bnn_tasks detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or (no value) from the latest checkpoint '
        'in the work dir')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size (mmdet configs)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed-precision training: bfloat16 autocast on a CPU with '
                        "bfloat16 in hardware (refused on others), mmengine's AmpOptimWrapper "
                        'on CUDA')
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
    recipe = parser.add_argument_group('two-stage recipe (docs/training.md)')
    recipe.add_argument('--two-stage', action='store_true',
                        help='train the float stage of the binary CONFIG, then CONFIG from its '
                        'weights, distilled from it; --max-iters/--budget-minutes are split '
                        'between the stages')
    recipe.add_argument('--first-stage-fraction', type=float,
                        help="the float stage's share of --max-iters and --budget-minutes "
                        '(default: the recipe\'s, 0.4)')
    recipe.add_argument('--float-stage-activations', choices=FLOAT_STAGE_ACTIVATIONS,
                        help="the float stage's activations where CONFIG binarizes them: clip "
                        "(-1, 1) (the default) or binary (float weights only, ReActNet's first "
                        'step)')
    recipe.add_argument('--binary-stage-lr-factor', type=float,
                        help="the binary stage's learning rate against CONFIG's (default: the "
                        f"recipe's, {BINARY_STAGE_LR_FACTOR})")
    recipe.add_argument('--binarize-warmup', type=float, metavar='FRACTION',
                        help='binarize gradually: blend every binary conv from the float '
                        "stage's function to the binary one over this share of the binary "
                        "stage's iterations (without --two-stage: of the run, from CONFIG's "
                        'float load_from); default: at once')
    recipe.add_argument('--no-distill', action='store_true',
                        help='stage 2 without distillation (load_from stage 1 only)')
    recipe.add_argument('--teacher-config',
                        help='distil from this model (e.g. the float twin in configs/baselines) '
                        'instead of stage 1; needs --teacher-checkpoint')
    recipe.add_argument('--teacher-checkpoint', help="the teacher's weights")
    recipe.add_argument('--distill-float-stage', action='store_true',
                        help='the --teacher-config model teaches the float stage too')
    recipe.add_argument('--distill-options', nargs='+', action=DictAction, default={},
                        help='DistillingModel options, e.g. feat_weight=0.5 logits_weight=1 '
                        'temperature=2')
    add_common_args(parser)
    args = parser.parse_args(argv)
    recipe_only = ('first_stage_fraction', 'float_stage_activations', 'binary_stage_lr_factor',
                   'no_distill', 'teacher_config', 'teacher_checkpoint', 'distill_options',
                   'distill_float_stage')
    used = [name for name in recipe_only if getattr(args, name)]
    if used and not args.two_stage:
        parser.error(f'--{used[0].replace("_", "-")} needs --two-stage')
    if args.no_distill and args.distill_options:
        parser.error('--distill-options configures the distillation that --no-distill turns off')
    if args.two_stage and args.resume:
        parser.error('--resume does not apply to --two-stage (rerun the stage that stopped '
                     'with its own work dir and config)')
    return args


def main(argv=None):
    args = parse_args(argv)
    from bnn_tasks import jobs
    cfg = config_from_args(args)
    options = dict(val_interval=args.val_interval, refit_to_budget=args.refit_to_budget,
                   no_validate=args.no_validate, auto_scale_lr=args.auto_scale_lr, amp=args.amp,
                   seed=args.seed, deterministic=True if args.deterministic else None)
    if args.two_stage:
        return jobs.train_two_stage(
            cfg, args.config, first_stage_fraction=args.first_stage_fraction,
            max_iters=args.max_iters, budget_minutes=args.budget_minutes,
            distill=not args.no_distill, teacher_config=args.teacher_config,
            teacher_checkpoint=args.teacher_checkpoint,
            distill_cfg=dict(args.distill_options),
            distill_float_stage=args.distill_float_stage,
            float_stage_activations=args.float_stage_activations or 'clip',
            binary_stage_lr_factor=args.binary_stage_lr_factor,
            binarize_warmup=args.binarize_warmup, **options)
    jobs.prepare_training(cfg, args.config, max_iters=args.max_iters,
                          budget_minutes=args.budget_minutes,
                          binarize_warmup=args.binarize_warmup, **options)
    return jobs.train(cfg, args.config, resume=args.resume)


if __name__ == '__main__':
    exit_process(run_tool(main))
