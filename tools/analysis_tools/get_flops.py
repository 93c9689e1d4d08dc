#!/usr/bin/env python
"""FLOPs, BOPs, OPs, binary/float parameters and storage of a model, per module and in total.

    python tools/analysis_tools/get_flops.py configs/bireal/faster-rcnn_bireal18_fpn_digits.py
    python tools/analysis_tools/get_flops.py CONFIG --shape 224 224 --backbone-only
    python tools/analysis_tools/get_flops.py CONFIG --shape 800 1344 --json flops.json
    python tools/analysis_tools/get_flops.py deploy_out/model.onnx       # an exported graph

FLOPs are float multiply-accumulates, BOPs binary ones (both operands +-1), OPs = BOPs/64 +
FLOPs (Bi-Real Net's convention); storage counts 1 bit per binary weight and 32 per float
parameter (conventions: ``bnn_tasks/analysis/cost.py``). A config is counted with one forward
pass of its model at ``--shape`` (default: the test pipeline's resize, padded as the model pads)
on a seeded random image; an ONNX file with ONNX shape inference, ``bnn_tasks::BinaryConv2d``
nodes as binary and Conv/Gemm/MatMul as float.
"""
import argparse
import json
import os
import os.path as osp
import sys

from bnn_tasks.cli import ToolError, check_cfg_options, run_tool


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Count FLOPs, BOPs, OPs and parameters')
    parser.add_argument('config', help='config file (detector, segmentor or backbone) or an '
                        'exported .onnx file')
    parser.add_argument('--shape', type=int, nargs='+', metavar='SIZE',
                        help='input size H W (or one value for a square); default: the '
                        "config's test resize (224 for a bare backbone)")
    parser.add_argument('--backbone-only', action='store_true',
                        help="count only the config's backbone (compare with classification "
                        'papers, which count the backbone and its classifier)')
    parser.add_argument('--depth', type=int, default=2,
                        help='table rows: modules summed to this many name components '
                        '(0: every module); the JSON holds every module and these groups')
    parser.add_argument('--json', metavar='OUT', help='also write the report as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx.yyy=value')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    return parser.parse_args(argv)


def input_shape(args, cfg=None):
    if args.shape:
        if len(args.shape) not in (1, 2) or min(args.shape) < 1:
            raise ToolError(f'--shape takes H W or one size, got {args.shape}')
        return tuple(args.shape) * (3 - len(args.shape))
    if cfg is None:
        return None
    if not args.backbone_only and cfg.get('default_scope') in ('mmdet', 'mmseg'):
        from bnn_tasks.build import input_shape_of
        shape = input_shape_of(cfg)
        if shape is not None:
            return shape
    return (224, 224)


def config_report(args):
    import torch
    from mmengine.config import Config

    from bnn_tasks.analysis import count_model
    from bnn_tasks.build import build_model
    if not osp.isfile(args.config):
        raise ToolError(f'config file {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options, args.config)
        cfg.merge_from_dict(args.cfg_options)
    if 'model' not in cfg:
        raise ToolError(f'{args.config} has no model')
    shape = input_shape(args, cfg)
    if args.backbone_only:
        if 'backbone' not in cfg.model:
            raise ToolError(f'{args.config}: model has no backbone (--backbone-only)')
        cfg.model = cfg.model.backbone
    torch.manual_seed(0)  # the RPN's proposals, hence the RoI head's cost, depend on weights
    model = build_model(cfg)
    return count_model(model, shape, source=args.config)


def onnx_report(args):
    from bnn_tasks.deploy.export import file_size
    from bnn_tasks.deploy.onnx_complexity import count_onnx
    if not osp.isfile(args.config):
        raise ToolError(f'ONNX file {args.config!r} does not exist')
    if args.backbone_only or args.cfg_options:
        raise ToolError('--backbone-only and --cfg-options apply to configs, not ONNX files')
    shape = input_shape(args)
    from google.protobuf.message import DecodeError
    try:
        report = count_onnx(args.config, shape)
    except DecodeError as e:
        raise ToolError(f'{args.config} is not an ONNX model: {e}') from None
    except ValueError as e:
        raise ToolError(f'{args.config}: {e}') from None
    report.notes.append(f'file size {file_size(args.config) / 2**20:.2f} MiB')
    return report


def summary(report) -> str:
    t = report.total
    lines = [f'model:        {report.source}',
             f'input shape:  {tuple(report.input_shape)}',
             f'FLOPs:        {t.float_macs:.4g}  (float MACs)',
             f'BOPs:         {t.binary_macs:.4g}  (binary MACs)',
             f'OPs:          {t.ops:.4g}  (BOPs / 64 + FLOPs)',
             f'params:       {t.float_params + t.binary_params:,}  (binary {t.binary_params:,}, '
             f'float {t.float_params:,})',
             f'storage:      {t.storage_mb:.3f} MB  (binary {t.binary_params / 8e6:.3f} MB at '
             f'1 bit, float {t.float_params * 4e-6:.3f} MB at 32 bits)']
    lines += [f'note:         {n}' for n in report.notes]
    if report.uncounted:
        lines.append(f'NOT COUNTED ({len(report.uncounted)}; MACs missing from the totals):')
        lines += [f'  {u}' for u in report.uncounted[:20]]
        if len(report.uncounted) > 20:
            lines.append(f'  ... {len(report.uncounted) - 20} more (in the JSON)')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    from bnn_tasks.analysis import format_table
    is_onnx = args.config.lower().endswith('.onnx')
    report = onnx_report(args) if is_onnx else config_report(args)
    depth = args.depth if args.depth > 0 else None
    print(format_table(report.grouped(depth), report.total))
    print()
    print(summary(report))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(report.to_dict(depth), f, indent=1)
        print(f'JSON: {args.json}')


if __name__ == '__main__':
    sys.exit(run_tool(main))
