"""Group-Net's fused bases (``bnn_tasks.layers.fused_bases``) compute the K separate bases.

Every comparison runs the wide ops and the loop over the bases on two copies of one block, so
batch-norm statistics, outputs and all gradients can be compared. In float64: the two differ
only in summation order, and float32 rounding of sums like the base scales' gradient (thousands
of terms) would need tolerances loose enough to hide a real mix-up.
"""
import copy

import pytest
import torch
from torch import nn

from bnn_tasks.backbones import GroupNetResNet
from bnn_tasks.binarizers import build_binarizer
from bnn_tasks.layers import GroupNetBlock, make_downsample_shortcut, method_conv_cfg
from bnn_tasks.layers.fused_bases import can_fuse

NORM_CFG = dict(type='BN', requires_grad=True)


def _randomize(module: nn.Module, seed: int):
    """Non-trivial BN affine/statistics and per-base scales, so a mix-up between bases shows."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
        if isinstance(m, GroupNetBlock):
            with torch.no_grad():
                m.base_scales.copy_(torch.rand(m.num_bases, generator=gen) + 0.1)


def _block(in_ch, out_ch, stride, dilations, input_quantizer=None, seed=0):
    torch.manual_seed(seed)
    shortcut = make_downsample_shortcut(in_ch, out_ch, stride, NORM_CFG)
    block = GroupNetBlock(in_ch, out_ch, stride=stride, base_dilations=dilations,
                          conv_cfg=method_conv_cfg('xnor', input_quantizer=input_quantizer),
                          norm_cfg=NORM_CFG, shortcut=shortcut)
    _randomize(block, seed)
    return block.double()


def _run(block, x, fused: bool):
    x = x.clone().requires_grad_(True)
    identity = x if block.shortcut is None else block.shortcut(x)
    if fused:
        units1 = [b.unit1 for b in block.bases]
        units2 = [b.unit2 for b in block.bases]
        out = block.forward_fused(x, identity, units1, units2)
    else:
        out = block.forward_separate(x, identity)
    # a non-uniform upstream gradient, so every output element weighs differently
    weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype).view_as(out)
    (out * weights).sum().backward()
    return out, x.grad


def _assert_same_function(block, x, atol=1e-9):
    fused_block, separate_block = block, copy.deepcopy(block)
    out_f, grad_x_f = _run(fused_block, x, fused=True)
    out_s, grad_x_s = _run(separate_block, x, fused=False)
    torch.testing.assert_close(out_f, out_s, rtol=1e-9, atol=atol)
    torch.testing.assert_close(grad_x_f, grad_x_s, rtol=1e-9, atol=atol)
    params_s = dict(separate_block.named_parameters())
    for name, p in fused_block.named_parameters():
        assert p.grad is not None, f'{name} got no gradient from the fused bases'
        torch.testing.assert_close(p.grad, params_s[name].grad, rtol=1e-9, atol=atol,
                                   msg=lambda m, name=name: f'{name}: {m}')
    buffers_s = dict(separate_block.named_buffers())
    for name, b in fused_block.named_buffers():
        torch.testing.assert_close(b, buffers_s[name], rtol=1e-12, atol=1e-12,
                                   msg=lambda m, name=name: f'{name}: {m}')


@pytest.mark.parametrize('in_ch,out_ch,stride,dilations', [
    (8, 8, 1, (1, 1, 1)),            # plain Group-Net: stacked + grouped convs
    (8, 16, 2, (1, 1, 1, 1)),        # strided, downsampling shortcut
    (8, 12, 2, (2, 2, 2, 2, 2)),     # dilated (equal BPAC rates), strided, odd widths
    (8, 8, 1, (3,)),                 # a single base
])
@pytest.mark.parametrize('training', [True, False])
def test_fused_bases_equal_separate_bases(in_ch, out_ch, stride, dilations, training):
    block = _block(in_ch, out_ch, stride, dilations).train(training)
    x = torch.randn(3, in_ch, 11, 13, dtype=torch.float64)
    _assert_same_function(block, x)


def test_fused_bases_equal_separate_bases_with_approx_sign_and_hardtanh():
    for quantizer in ('approx_sign', 'hardtanh'):
        block = _block(8, 8, 1, (2, 2, 2), input_quantizer=quantizer, seed=3)
        _assert_same_function(block, torch.randn(2, 8, 9, 9, dtype=torch.float64))


def test_fused_bases_equal_separate_bases_during_the_binarization_warmup():
    from bnn_tasks.engine.binarization_warmup_hook import wrap_binarizers
    block = _block(8, 8, 1, (1, 1, 1), input_quantizer='approx_sign', seed=5).train()
    for _, _, blend in wrap_binarizers(block):
        blend.progress = 0.4
    assert can_fuse([b.unit1 for b in block.bases])
    _assert_same_function(block, torch.randn(2, 8, 9, 9, dtype=torch.float64))


def test_forward_uses_fused_bases_and_loops_under_hooks(monkeypatch):
    block = _block(8, 8, 1, (1, 1, 1))
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64)

    def fail(*args):
        raise AssertionError('ran the bases one by one')
    monkeypatch.setattr(block, 'forward_separate', fail)
    block(x)
    # the exporter hooks each base's conv: it must see each one called
    seen = []
    handle = block.bases[1].unit2.conv.register_forward_pre_hook(lambda m, a: seen.append(1))
    monkeypatch.undo()
    block(x)
    handle.remove()
    assert seen == [1]


def test_bpac_bases_with_distinct_rates_run_one_by_one(monkeypatch):
    block = _block(8, 8, 1, (1, 2, 3))
    assert not can_fuse([b.unit1 for b in block.bases])

    def fail(*args):
        raise AssertionError('fused bases with distinct dilations')
    monkeypatch.setattr(block, 'forward_fused', fail)
    block(torch.randn(2, 8, 8, 8, dtype=torch.float64))


def test_can_fuse_refuses_mixed_layers():
    block = _block(8, 8, 1, (1, 1, 1))
    units = [b.unit1 for b in block.bases]
    assert can_fuse(units)
    units[1].norm.momentum = 0.3
    assert not can_fuse(units)
    units[1].norm.momentum = units[0].norm.momentum
    units[2].conv.input_quantizer = build_binarizer('approx_sign', 'input')
    assert not can_fuse(units)


@pytest.mark.parametrize('bpac_rates', [None, (None, None, (2, 2, 2), (4, 4, 4))])
def test_group_net_backbone_fused_equals_separate(bpac_rates):
    torch.manual_seed(0)
    model = GroupNetResNet(depth=18, num_bases=3, base_channels=8, stem_channels=8,
                           strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), bpac_rates=bpac_rates)
    _randomize(model, 1)
    model.double()
    separate = copy.deepcopy(model)
    for m in separate.modules():
        if isinstance(m, GroupNetBlock):
            m.fuse_bases = False
    x = torch.randn(2, 3, 48, 48, dtype=torch.float64)
    outs_f, outs_s = model(x), separate(x)
    for out_f, out_s in zip(outs_f, outs_s):
        torch.testing.assert_close(out_f, out_s, rtol=1e-9, atol=1e-9)
    sum(o.sum() for o in outs_f).backward()
    sum(o.sum() for o in outs_s).backward()
    params_s = dict(separate.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, params_s[name].grad, rtol=1e-9, atol=1e-9,
                                   msg=lambda m, name=name: f'{name}: {m}')
    # the layout of the state dict is the per-base one: the loop reads the same checkpoint
    assert model.state_dict().keys() == separate.state_dict().keys()
