"""Backbone pretraining on digit crops, and ``load_from`` of its checkpoint by tools/train.py."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import REPO, digits_overrides, load_tool, options_to_cli
from mmengine.config import Config

from bnn_tasks.datasets.digit_crops import DigitCrops
from bnn_tasks.datasets.errors import DatasetError

train_tool = load_tool('train')
pretrain_tool = load_tool('pretrain_backbone')
SEG_PT = osp.join(REPO, 'configs', 'bireal', 'fcn_bireal18-d8_digits_pretrained.py')
SEG_OTHER = osp.join(REPO, 'configs', 'baselines', 'fcn_r18-d8_digits.py')


def test_crops_are_centred_on_the_annotated_digits(tiny_digits):
    crops = DigitCrops(tiny_digits, 'train', crop_size=32)
    ann = json.load(open(osp.join(tiny_digits, 'annotations', 'instances_train.json')))
    assert len(crops) == len(ann['annotations']) and crops.classes == [str(d) for d in range(10)]
    images, labels = crops.fixed(0, len(crops))
    assert images.shape == (len(crops), 32, 32, 3) and images.dtype == np.uint8
    assert list(labels) == [a['category_id'] - 1 for a in ann['annotations']]
    batch, batch_labels = crops.sample(np.random.default_rng(0), 5)
    assert batch.shape == (5, 32, 32, 3) and set(batch_labels) <= set(labels)


def test_missing_annotation_file_is_named(tmp_path):
    with pytest.raises(DatasetError, match='instances_train.json'):
        DigitCrops(str(tmp_path), 'train')


def _opts(config, root, **extra):
    opts = digits_overrides(Config.fromfile(config), root)
    opts.update({'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1,
                 'default_hooks.logger.interval': 1})
    opts.update(extra)
    return opts


def test_pretrained_backbone_is_loaded_and_a_foreign_one_refused(tiny_digits, tmp_path, capsys):
    ckpt = str(tmp_path / 'backbone.pth')
    code = pretrain_tool.run_tool(pretrain_tool.main, [
        SEG_PT, '--minutes', '1', '--max-iters', '4', '--batch-size', '4', '--crop-size', '32',
        '--data-root', tiny_digits, '--out', ckpt])
    assert code == 0, capsys.readouterr().err
    summary = json.load(open(osp.join(tmp_path, 'backbone.json')))
    assert summary['iterations'] == 4 and 0 <= summary['val_accuracy'] <= 100
    saved = torch.load(ckpt, map_location='cpu')
    assert saved['meta']['backbone_pretrain']['iterations'] == 4
    assert saved['state_dict'] and all(k.startswith('backbone.') for k in saved['state_dict'])

    # training from the config loads them: mmengine lists only the fresh heads as missing
    work = str(tmp_path / 'work')
    opts = _opts(SEG_PT, tiny_digits, load_from=ckpt)
    code = train_tool.run_tool(train_tool.main,
                               [SEG_PT, '--work-dir', work, '--cfg-options']
                               + options_to_cli(opts))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    log = open(sorted(glob.glob(osp.join(work, '*', '*.log')))[-1]).read()
    assert 'Load checkpoint from' in log
    # mmengine prints the key mismatch (non-strict load) to stdout
    missing = captured.out.split('missing keys in source state_dict:')[1].split('\n')[0]
    assert 'decode_head.' in missing and 'backbone.' not in missing

    # a float ResNet-18 FCN cannot start from a Bi-Real backbone: named, not silently skipped
    opts = _opts(SEG_OTHER, tiny_digits, load_from=ckpt)
    code = train_tool.run_tool(train_tool.main,
                               [SEG_OTHER, '--work-dir', str(tmp_path / 'w2'), '--cfg-options']
                               + options_to_cli(opts))
    err = capsys.readouterr().err
    assert code == 2 and 'backbone.pth' in err and 'does not fit' in err


def test_pretrain_without_data_names_the_root(tmp_path, capsys):
    code = pretrain_tool.run_tool(pretrain_tool.main, [
        SEG_PT, '--minutes', '1', '--data-root', str(tmp_path / 'nope'), '--out',
        str(tmp_path / 'x.pth')])
    assert code == 2 and 'nope' in capsys.readouterr().err


def test_pretraining_runs_the_backbone_at_the_full_lr():
    """The *_pretrained configs slow the backbone down for fine-tuning; pretraining must not."""
    from mmengine.optim import build_optim_wrapper

    from bnn_tasks.build import build_backbone
    from bnn_tasks.engine.backbone_pretrain import BackboneClassifier, pretraining_optim_wrapper
    cfg = Config.fromfile(SEG_PT)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['backbone']['lr_mult'] == 0.1
    model = BackboneClassifier(build_backbone(cfg), 10, probe_size=32)
    optim = build_optim_wrapper(model, pretraining_optim_wrapper(cfg)).optimizer
    base_lr = cfg.optim_wrapper.optimizer.lr
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {}
    for group in optim.param_groups:
        assert group['lr'] == base_lr
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    # the latent binary weights still get no weight decay
    from bnn_tasks.layers.binary_conv import BinaryConv2d
    binary = [f'{n}.weight' for n, m in model.named_modules() if isinstance(m, BinaryConv2d)]
    assert binary and all(decay[n] == 0.0 for n in binary)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['backbone']['lr_mult'] == 0.1  # untouched


def test_float_stage_pretraining_trains_the_networks_two_stage_starts_from(
        tiny_digits, tmp_path, capsys, monkeypatch):
    """--float-stage: float weights and clip activations wherever the config binarizes."""
    import bnn_tasks.engine.backbone_pretrain as backbone_pretrain
    from bnn_tasks.layers.binary_conv import BinaryConv2d
    built = []
    real_build = backbone_pretrain.build_backbone
    monkeypatch.setattr(backbone_pretrain, 'build_backbone',
                        lambda cfg: built.append(real_build(cfg)) or built[-1])
    ckpt = str(tmp_path / 'float_stage.pth')
    code = pretrain_tool.run_tool(pretrain_tool.main, [
        SEG_PT, '--float-stage', '--max-iters', '2', '--batch-size', '4', '--data-root',
        tiny_digits, '--out', ckpt])
    assert code == 0, capsys.readouterr().err
    assert json.load(open(osp.join(tmp_path, 'float_stage.json')))['float_stage'] is True
    convs = [m for m in built[0].modules() if isinstance(m, BinaryConv2d)]
    weight = torch.randn(4, 3, 3, 3)
    x = torch.linspace(-3, 3, 13)
    for conv in convs:  # identity weights, clip(-1, 1) inputs
        signs, scale = conv.kernel_quantizer(weight)
        assert torch.equal(signs, weight) and scale is None
        assert torch.equal(conv.input_quantizer(x), x.clamp(-1, 1))
    assert convs

    # a float config has no float stage: named, not silently pretrained as is
    code = pretrain_tool.run_tool(pretrain_tool.main, [
        SEG_OTHER, '--float-stage', '--max-iters', '2', '--data-root', tiny_digits, '--out',
        str(tmp_path / 'x.pth')])
    err = capsys.readouterr().err
    assert code == 2 and '--float-stage' in err and 'fcn_r18-d8_digits.py' in err


def test_amp_pretrains_in_bf16_where_the_cpu_has_it_and_is_refused_where_not(
        tiny_digits, tmp_path, capsys, monkeypatch):
    import bnn_tasks.engine.backbone_pretrain as backbone_pretrain
    from bnn_tasks.engine import mixed_precision
    args = ['--float-stage', '--max-iters', '2', '--batch-size', '4', '--data-root', tiny_digits,
            '--amp']
    monkeypatch.setattr(mixed_precision, 'has_native_bf16', lambda: False)
    code = pretrain_tool.run_tool(pretrain_tool.main, [SEG_PT, '--out', str(tmp_path / 'no.pth')]
                                  + args)
    err = capsys.readouterr().err
    assert code == 2 and 'fcn_bireal18-d8_digits_pretrained.py: --amp' in err
    assert not osp.exists(tmp_path / 'no.pth')

    monkeypatch.setattr(mixed_precision, 'has_native_bf16', lambda: True)
    out_dtypes, built = [], []
    real_build = backbone_pretrain.build_backbone

    def build_and_watch(cfg):
        backbone = real_build(cfg)
        first_conv = next(m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d))
        first_conv.register_forward_hook(lambda m, i, o: out_dtypes.append(o.dtype))
        built.append(backbone)
        return backbone
    monkeypatch.setattr(backbone_pretrain, 'build_backbone', build_and_watch)
    ckpt = tmp_path / 'bf16.pth'
    code = pretrain_tool.run_tool(pretrain_tool.main, [SEG_PT, '--out', str(ckpt)] + args)
    assert code == 0, capsys.readouterr().err
    # the classifier's shape probe at construction, two training steps in bfloat16, then the
    # validation pass in float32
    bf16_steps = [i for i, dtype in enumerate(out_dtypes) if dtype == torch.bfloat16]
    assert len(bf16_steps) == 2 and bf16_steps[1] == bf16_steps[0] + 1
    assert out_dtypes[bf16_steps[1] + 1:] and set(out_dtypes[bf16_steps[1] + 1:]) == {torch.float32}
    assert json.load(open(tmp_path / 'bf16.json'))['amp'] is True
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert saved and all(v.dtype != torch.bfloat16 for v in saved.values())


class _SteppedClock:
    """``time`` stand-in for the pretraining loop: it reads the clock once before the first
    step and once after each; the first ``slow_steps`` take ``slow_s`` each, the rest ``fast_s``."""

    def __init__(self, slow_steps, slow_s, fast_s):
        self.calls, self.slow_steps, self.slow_s, self.fast_s = 0, slow_steps, slow_s, fast_s

    def monotonic(self):
        steps = self.calls
        self.calls += 1
        slow = min(steps, self.slow_steps)
        return slow * self.slow_s + (steps - slow) * self.fast_s


def test_budget_fit_uses_the_step_time_after_the_slow_first_steps(tiny_digits, tmp_path,
                                                                   monkeypatch):
    """Three 2 s steps, then 0.5 s ones, in a 1-minute budget: 3 + 108 = 111 iterations.
    Fitting on the average since the start (0.73 s at step 20) would stop at 83 and leave a
    quarter of the budget unused."""
    import bnn_tasks.engine.backbone_pretrain as backbone_pretrain
    cfg = Config.fromfile(SEG_PT)
    train = DigitCrops(tiny_digits, 'train', crop_size=32)
    val = DigitCrops(tiny_digits, 'val', crop_size=32)
    monkeypatch.setattr(backbone_pretrain, 'time', _SteppedClock(3, 2.0, 0.5))
    summary = backbone_pretrain.pretrain_backbone(cfg, train, val, str(tmp_path / 'b.pth'),
                                                  minutes=1.0, batch_size=2)
    assert summary['iterations'] == 111
    # the clock's last read (after the loop) counts one more fake step: 60.5 s
    assert summary['minutes'] == pytest.approx(60.5 / 60, abs=0.005)
