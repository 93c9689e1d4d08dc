"""Gradual binarization (``--binarize-warmup``): the blended binarizer, the hook that moves and
removes it, and the recipe and tool options that turn it on."""
import glob
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from conftest import REPO, digits_overrides, load_tool, options_to_cli
from mmengine.config import Config
from torch import nn

from bnn_tasks.binarizers import GradualBinarizer, build_binarizer, sign
from bnn_tasks.engine import BinarizationWarmupHook
from bnn_tasks.engine.recipe import (RecipeError, binary_stage, check_warmup_fraction,
                                     with_binarization_warmup)
from bnn_tasks.layers import BinaryConv2d

train_tool = load_tool('train')
FCN = osp.join(REPO, 'configs', 'bireal', 'fcn_bireal18-d8_digits.py')


def _blend(relaxed, binary, kind, progress):
    blend = GradualBinarizer(build_binarizer(relaxed, kind), build_binarizer(binary, kind))
    blend.progress = progress
    return blend


def test_input_blend_moves_from_clip_to_sign_and_evaluates_binary():
    x = torch.randn(4, 3, 5, 5) * 2
    for progress in (0.0, 0.3, 1.0):
        blend = _blend('hardtanh', 'approx_sign', 'input', progress)
        expected = (1 - progress) * x.clamp(-1, 1) + progress * sign(x)
        torch.testing.assert_close(blend(x), expected)
        assert torch.equal(blend.eval()(x), sign(x))  # evaluation: the binary network only


def test_input_blend_gradient_mixes_the_two_backward_rules():
    x = torch.tensor([-1.5, -0.5, 0.25, 0.9], requires_grad=True)
    _blend('hardtanh', 'approx_sign', 'input', 0.25)(x).sum().backward()
    clip_grad = (x.detach().abs() <= 1).float()
    approx_grad = (2 - 2 * x.detach().abs()).clamp(min=0)
    torch.testing.assert_close(x.grad, 0.75 * clip_grad + 0.25 * approx_grad)


def test_kernel_blend_folds_the_binary_scale_into_the_weights():
    w = torch.randn(6, 3, 3, 3)
    scale = w.abs().flatten(1).mean(1).view(-1, 1, 1, 1)
    weight, out_scale = _blend('identity', 'scaled_sign', 'kernel', 0.4)(w)
    assert out_scale is None
    torch.testing.assert_close(weight, 0.6 * w + 0.4 * sign(w) * scale)
    # XNOR-Net++: unscaled signs from weights normalized to mean magnitude 1
    weight, _ = _blend('mean_normalized', 'sign', 'kernel', 0.5)(w)
    torch.testing.assert_close(weight, 0.5 * w / scale + 0.5 * sign(w))
    signs, out_scale = _blend('identity', 'scaled_sign', 'kernel', 0.4).eval()(w)
    assert torch.equal(signs, sign(w)) and torch.equal(out_scale, scale.flatten())
    with pytest.raises(ValueError, match='cannot blend'):
        GradualBinarizer(build_binarizer('hardtanh', 'input'),
                         build_binarizer('scaled_sign', 'kernel'))


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.binary = BinaryConv2d(3, 4, 3, padding=1, input_quantizer='approx_sign')
        self.teacher = BinaryConv2d(4, 4, 3, padding=1, input_quantizer='hardtanh',
                                    kernel_quantizer='identity')  # a float conv: left alone

    def forward(self, x):
        return self.teacher(self.binary(x))


def _runner(model, max_iters):
    return SimpleNamespace(model=model, iter=0, max_iters=max_iters,
                           logger=SimpleNamespace(info=lambda message: None))


def test_hook_ramps_the_blend_then_restores_the_binary_binarizers():
    net = _Net().train()
    input_q, kernel_q = net.binary.input_quantizer, net.binary.kernel_quantizer
    keys = set(net.state_dict())
    runner = _runner(net, max_iters=20)
    hook = BinarizationWarmupHook(fraction=0.5)
    hook.before_train(runner)
    assert isinstance(net.binary.input_quantizer, GradualBinarizer)
    assert isinstance(net.binary.kernel_quantizer, GradualBinarizer)
    assert not isinstance(net.teacher.input_quantizer, GradualBinarizer)
    assert set(net.state_dict()) == keys  # checkpoints keep their keys
    x = torch.randn(2, 3, 8, 8)
    for it, progress in ((0, 0.0), (4, 0.4), (9, 0.9)):
        runner.iter = it
        hook.before_train_iter(runner, it)
        assert net.binary.input_quantizer.progress == pytest.approx(progress)
        assert net.binary.kernel_quantizer.progress == pytest.approx(progress)
    # progress 0: the float stage's function (clip activations, real weights)
    runner.iter = 0
    hook.before_train_iter(runner, 0)
    float_conv = nn.functional.conv2d(x.clamp(-1, 1), net.binary.weight, padding=1)
    torch.testing.assert_close(net.binary(x), float_conv)
    runner.iter = 10  # half of 20: the warm-up ends
    hook.before_train_iter(runner, 10)
    assert net.binary.input_quantizer is input_q and net.binary.kernel_quantizer is kernel_q


def test_hook_follows_a_refitted_schedule_and_ends_binary_after_a_short_run():
    net = _Net().train()
    runner = _runner(net, max_iters=100)
    hook = BinarizationWarmupHook(fraction=0.2)
    hook.before_train(runner)
    runner.iter, runner.max_iters = 10, 200  # the time budget stretched the run
    hook.before_train_iter(runner, 10)
    assert net.binary.input_quantizer.progress == pytest.approx(0.25)
    hook.after_train(runner)  # stopped inside the warm-up: still ends binary
    assert not isinstance(net.binary.input_quantizer, GradualBinarizer)


def test_hook_relaxes_only_the_weights_after_a_binary_activation_float_stage():
    net = _Net().train()
    BinarizationWarmupHook(fraction=0.5, relax_activations=False).before_train(
        _runner(net, 10))
    assert not isinstance(net.binary.input_quantizer, GradualBinarizer)
    assert isinstance(net.binary.kernel_quantizer, GradualBinarizer)


def test_hook_skips_a_resumed_run_past_its_warmup_and_refuses_a_float_model():
    net = _Net().train()
    runner = _runner(net, max_iters=10)
    runner.iter = 8
    BinarizationWarmupHook(fraction=0.5).before_train(runner)
    assert not isinstance(net.binary.input_quantizer, GradualBinarizer)
    with pytest.raises(ValueError, match='no binary conv'):
        BinarizationWarmupHook(fraction=0.5).before_train(_runner(nn.Conv2d(3, 3, 1), 10))


def test_recipe_adds_one_hook_and_refuses_shares_outside_zero_to_one():
    cfg = Config.fromfile(FCN)
    stage2 = binary_stage(cfg, 'stage1.pth', FCN, distill=False, binarize_warmup=0.25)
    hooks = [h for h in stage2.custom_hooks if h['type'] == 'BinarizationWarmupHook']
    assert hooks == [dict(type='BinarizationWarmupHook', fraction=0.25, relax_activations=True)]
    again = with_binarization_warmup(stage2, 0.5, stage1_activations='binary')
    hooks = [h for h in again.custom_hooks if h['type'] == 'BinarizationWarmupHook']
    assert hooks == [dict(type='BinarizationWarmupHook', fraction=0.5, relax_activations=False)]
    assert not any(h['type'] == 'BinarizationWarmupHook'
                   for h in binary_stage(cfg, 'stage1.pth', FCN).get('custom_hooks', []))
    for bad in (0, -0.1, 1.5):
        with pytest.raises(RecipeError, match=r'\(0, 1\]'):
            check_warmup_fraction(bad)


def test_train_tool_refuses_a_warmup_without_float_weights(tiny_digits, tmp_path, capsys):
    opts = digits_overrides(Config.fromfile(FCN), tiny_digits)
    code = train_tool.run_tool(train_tool.main, [
        FCN, '--binarize-warmup', '0.5', '--max-iters', '2', '--work-dir', str(tmp_path),
        '--cfg-options', *options_to_cli(opts)])
    assert code != 0
    assert 'no load_from' in capsys.readouterr().err


def test_two_stage_binarizes_gradually_and_records_it(tiny_digits, tmp_path):
    opts = digits_overrides(Config.fromfile(FCN), tiny_digits)
    work = str(tmp_path)
    code = train_tool.run_tool(train_tool.main, [
        FCN, '--two-stage', '--no-distill', '--binarize-warmup', '0.5', '--max-iters', '8',
        '--first-stage-fraction', '0.5', '--val-interval', '0', '--work-dir', work,
        '--cfg-options', *options_to_cli(opts)])
    assert code == 0
    with open(osp.join(work, 'train_result.json')) as f:
        result = json.load(f)
    assert result['binarize_warmup'] == 0.5
    log = ''.join(open(p).read()
                  for p in glob.glob(osp.join(work, 'stage2_binary', '*', '*.log')))
    assert 'binarization warm-up:' in log
    assert 'binarization warm-up done at iteration 2' in log
    stage1_log = ''.join(open(p).read()
                         for p in glob.glob(osp.join(work, 'stage1_float', '*', '*.log')))
    assert 'binarization warm-up' not in stage1_log
