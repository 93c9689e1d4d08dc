"""Binary conv layers: sign-valued operands, scales, XNOR-Net++ factors, Group-Net/BPAC blocks."""
import pytest
import torch
import torch.nn.functional as F

from bnn_tasks.binarizers import sign
from bnn_tasks.layers import (BinaryConv2d, GroupNetBlock, XNORPPConv2d, build_binary_conv,
                              method_conv_cfg)
from bnn_tasks.layers import binary_conv as binary_conv_module


@pytest.fixture
def captured_conv_operands(monkeypatch):
    """Record the tensors that binary convs hand to F.conv2d."""
    calls = []
    real_conv2d = F.conv2d

    def spy(x, w, *args, **kwargs):
        calls.append((x.detach().clone(), w.detach().clone()))
        return real_conv2d(x, w, *args, **kwargs)

    monkeypatch.setattr(binary_conv_module.F, 'conv2d', spy)
    return calls


@pytest.mark.parametrize('conv_cls', [BinaryConv2d, XNORPPConv2d])
def test_binary_conv_multiplies_only_sign_values(conv_cls, captured_conv_operands):
    conv = conv_cls(5, 7, 3, padding=1, input_quantizer='approx_sign')
    x = torch.randn(2, 5, 9, 11)
    x[0, 0, 0, :3] = 0.0  # zeros must binarize to +1, never 0
    conv(x)
    (x_bin, w_bin), = captured_conv_operands
    for t in (x_bin, w_bin):
        assert set(torch.unique(t).tolist()) <= {-1.0, 1.0}
    assert torch.equal(x_bin, sign(x))
    assert torch.equal(w_bin, sign(conv.weight.detach()))
    assert torch.all(x_bin[0, 0, 0, :3] == 1.0)


def test_binary_conv_equals_float_conv_of_signs_times_scale():
    torch.manual_seed(0)
    conv = BinaryConv2d(6, 4, 3, stride=2, padding=2, dilation=2, bias=True)
    x = torch.randn(3, 6, 13, 10)
    w = conv.weight.detach()
    scale = w.abs().flatten(1).mean(1)
    expected = F.conv2d(sign(x), sign(w), None, 2, 2, 2) * scale.view(1, -1, 1, 1) \
        + conv.bias.detach().view(1, -1, 1, 1)
    assert torch.allclose(conv(x), expected, atol=1e-5)


def test_binary_conv_backpropagates_to_latent_weights_and_input():
    conv = BinaryConv2d(3, 4, 3, padding=1)
    x = (torch.rand(1, 3, 8, 8) * 1.6 - 0.8).requires_grad_(True)
    conv(x).square().sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize('size', [(7, 9), (16, 16), (33, 20), (1, 1)])
def test_xnorpp_factors_follow_the_real_output_size(size):
    conv = XNORPPConv2d(4, 6, 3, padding=1, spatial_size=8)
    with torch.no_grad():
        conv.beta.copy_(torch.linspace(0.5, 2.0, 8))
        conv.gamma.copy_(torch.linspace(2.0, 1.0, 8))
    x = torch.randn(2, 4, *size)
    y = conv(x)
    alpha, beta, gamma = conv.spatial_factors(*y.shape[-2:])
    assert beta.shape == (size[0],) and gamma.shape == (size[1],)
    raw = F.conv2d(sign(x), sign(conv.weight.detach()), None, 1, 1)
    expected = raw * alpha.view(1, -1, 1, 1) * beta.view(1, 1, -1, 1) * gamma.view(1, 1, 1, -1)
    assert torch.allclose(y, expected, atol=1e-5)
    if size[0] > 1:  # resampling keeps the end points of the learned vector
        assert beta[0].item() == pytest.approx(0.5) and beta[-1].item() == pytest.approx(2.0)


@pytest.mark.parametrize('conv_cls,kernel_quantizer', [(BinaryConv2d, 'scaled_sign'),
                                                       (BinaryConv2d, 'sign'),
                                                       (XNORPPConv2d, 'sign'),
                                                       (XNORPPConv2d, 'scaled_sign')])
def test_output_factors_reproduce_the_layer(conv_cls, kernel_quantizer):
    """What export folds into the op (channel, row, column factors) is what the layer computes."""
    conv = conv_cls(4, 6, 3, stride=2, padding=1, bias=True, kernel_quantizer=kernel_quantizer)
    if conv_cls is XNORPPConv2d:
        with torch.no_grad():
            conv.beta.copy_(torch.rand(conv.beta.shape) + 0.5)
            conv.gamma.copy_(torch.rand(conv.gamma.shape) + 0.5)
    x = torch.randn(2, 4, 11, 9)
    with torch.no_grad():
        y = conv(x)
        channel, row, col = conv.output_factors(*y.shape[-2:])
        expected = F.conv2d(sign(x), sign(conv.weight), None, 2, 1) * channel.view(1, -1, 1, 1)
        if conv_cls is XNORPPConv2d:
            expected = expected * row.view(1, 1, -1, 1) * col.view(1, 1, 1, -1)
        else:
            assert row is None and col is None
    torch.testing.assert_close(y, expected + conv.bias.view(1, -1, 1, 1))


def test_xnorpp_factors_are_learned():
    conv = XNORPPConv2d(3, 2, 3, padding=1)
    conv(torch.randn(1, 3, 5, 6)).sum().backward()
    for p in (conv.alpha, conv.beta, conv.gamma):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_group_net_block_bases_have_distinct_rates():
    block = GroupNetBlock(8, 8, base_dilations=(1, 2, 3), conv_cfg=method_conv_cfg('xnor'))
    rates = [(b.unit1.conv.dilation, b.unit2.conv.dilation) for b in block.bases]
    assert rates == [((1, 1), (1, 1)), ((2, 2), (2, 2)), ((3, 3), (3, 3))]
    assert [b.unit1.conv.padding for b in block.bases] == [(1, 1), (2, 2), (3, 3)]
    y = block(torch.randn(2, 8, 12, 12))
    assert y.shape == (2, 8, 12, 12)


def test_unknown_conv_type_and_method_are_clear_errors():
    with pytest.raises(KeyError, match="unknown binary conv type 'BinConv'"):
        build_binary_conv(dict(type='BinConv'), 3, 3, 3)
    with pytest.raises(KeyError, match="unknown binary method 'bi_real'"):
        method_conv_cfg('bi_real')
    with pytest.raises(KeyError, match='unknown input binarizer'):
        BinaryConv2d(3, 3, 3, input_quantizer='sgn')


def _unit(in_channels, out_channels, stride=1, padding=1, **kwargs):
    from mmcv.cnn import build_conv_layer
    return build_conv_layer(dict(type='BinaryConvUnit', method='bireal', **kwargs), in_channels,
                            out_channels, 3, stride=stride, padding=padding)


def test_binary_conv_unit_is_norm_binary_conv_norm_plus_shortcut():
    from bnn_tasks.layers import BinaryConvUnit
    torch.manual_seed(0)
    unit = _unit(8, 8).eval()
    for norm in (unit.norm_in, unit.norm_out):  # non-trivial statistics
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    x = 30 * torch.randn(2, 8, 6, 6)  # a float neck's scale, far outside sign's window
    expected = unit.norm_out(unit.conv(unit.norm_in(x))) + x
    assert isinstance(unit, BinaryConvUnit) and isinstance(unit.conv, BinaryConv2d)
    assert torch.equal(unit(x), expected)
    # the input is normalized before sign: the binary conv sees balanced signs, not raw scale
    unit.train()
    x.requires_grad_(True)
    unit(x).sum().backward()
    assert unit.conv.weight.grad.abs().sum() > 0 and unit.norm_in.weight.grad.abs().sum() > 0
    # the identity shortcut passes d(sum)/dx = 1 whatever sign's window lets through
    assert x.grad.abs().mean() > 0.5


def test_binary_conv_unit_projects_or_drops_the_shortcut_when_shapes_change():
    down = _unit(8, 16, stride=2)
    assert down(torch.randn(1, 8, 7, 7)).shape == (1, 16, 4, 4)
    assert down.shortcut is not None and down.has_shortcut
    plain = _unit(8, 16, project_shortcut=False)
    assert plain.shortcut is None and not plain.has_shortcut
    x = torch.randn(1, 8, 5, 5)
    plain.eval()
    assert torch.equal(plain(x), plain.norm_out(plain.conv(plain.norm_in(x))))
    with pytest.raises(ValueError, match='no shortcut can match'):
        _unit(8, 8, padding=0)
    # 1x1 convs stay float, as with type='BinaryConv'
    from mmcv.cnn import build_conv_layer
    assert type(build_conv_layer(dict(type='BinaryConvUnit'), 8, 8, 1)) is torch.nn.Conv2d
