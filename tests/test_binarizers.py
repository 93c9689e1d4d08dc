"""Binarizer forward values and gradients against their closed-form definitions."""
import pytest
import torch

from bnn_tasks.binarizers import (ApproxSign, HardTanh, ScaledSignWeight, SignWeight, SteSign,
                                  build_binarizer, sign)

EDGE = torch.tensor([-1e6, -3.0, -1.0, -0.999, -0.5, -1e-7, 0.0, 1e-7, 0.5, 0.999, 1.0, 3.0, 1e6],
                    dtype=torch.float64)


def _forward_backward(fn, x):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    y.backward(torch.ones_like(y))
    return y.detach(), x.grad


def test_sign_of_zero_is_plus_one_and_never_zero():
    y = sign(EDGE)
    assert set(y.tolist()) == {-1.0, 1.0}
    assert y[EDGE == 0].item() == 1.0
    assert torch.equal(y, torch.where(EDGE >= 0, 1.0, -1.0).to(y.dtype))


def test_ste_sign_forward_and_clipped_gradient():
    y, grad = _forward_backward(SteSign(), EDGE)
    assert torch.equal(y, sign(EDGE))
    expected = (EDGE.abs() <= 1).to(EDGE.dtype)  # 1 on |x| <= 1 (both ends included), else 0
    assert torch.equal(grad, expected)
    assert grad[EDGE == 1.0].item() == 1.0 and grad[EDGE == 3.0].item() == 0.0


def test_approx_sign_forward_and_bireal_gradient():
    y, grad = _forward_backward(ApproxSign(), EDGE)
    assert torch.equal(y, sign(EDGE))
    expected = torch.where(EDGE.abs() < 1, 2 - 2 * EDGE.abs(), torch.zeros_like(EDGE))
    assert torch.allclose(grad, expected, atol=0, rtol=1e-12)
    assert grad[EDGE == 0].item() == 2.0
    assert grad[EDGE == 1.0].item() == 0.0 and grad[EDGE == -1e6].item() == 0.0


def test_approx_sign_gradient_scales_upstream_gradient():
    x = torch.tensor([0.25, -0.25], requires_grad=True)
    ApproxSign()(x).backward(torch.tensor([3.0, -2.0]))
    assert torch.allclose(x.grad, torch.tensor([3.0 * 1.5, -2.0 * 1.5]))


def test_hardtanh_is_the_real_valued_clip_of_the_float_stage():
    y, grad = _forward_backward(HardTanh(), EDGE)
    assert torch.equal(y, EDGE.clamp(-1, 1))
    assert y[EDGE == 0.5].item() == 0.5  # real-valued inside the range, not a sign
    assert torch.equal(grad, (EDGE.abs() < 1).to(EDGE.dtype))  # flat at and beyond the ends
    assert isinstance(build_binarizer('hardtanh', 'input'), HardTanh)
    with pytest.raises(KeyError, match='hardtanh'):  # an activation function, not for weights
        build_binarizer('hardtanh', 'kernel')


def test_scaled_sign_weight_values_and_gradients():
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64) * 0.8
    w[0, 0, 0, 0] = 0.0
    w[1, 0, 0, 0] = 2.5  # outside the clip range: no straight-through gradient from the sign
    w.requires_grad_(True)
    signs, scale = ScaledSignWeight()(w)
    assert torch.equal(signs, sign(w.detach()))
    assert signs[0, 0, 0, 0].item() == 1.0
    assert torch.allclose(scale, w.detach().abs().flatten(1).mean(1))
    # d/dW of sum(signs * G) = G * 1{|W| <= 1} (straight-through).
    g = torch.randn_like(w)
    (signs * g).sum().backward()
    assert torch.allclose(w.grad, g * (w.detach().abs() <= 1))
    # d/dW of sum(scale * h) = h[o] * sign(W) / n (n = weights per output channel).
    w.grad = None
    h = torch.randn(4, dtype=torch.float64)
    _, scale = ScaledSignWeight()(w)
    (scale * h).sum().backward()
    n = w[0].numel()
    expected = h.view(-1, 1, 1, 1) * torch.sign(w.detach()) / n
    assert torch.allclose(w.grad, expected)


def test_identity_binarizers_pass_values_through():
    x = torch.randn(2, 3, 3, 3)
    assert torch.equal(build_binarizer('identity', 'input')(x), x)
    w, scale = build_binarizer(None, 'kernel')(x)
    assert w is x and scale is None


def test_binary_conv_with_identity_binarizers_is_a_float_conv():
    from bnn_tasks.layers import BinaryConv2d
    conv = BinaryConv2d(3, 4, 3, padding=1, input_quantizer='identity',
                        kernel_quantizer='identity')
    x = torch.randn(1, 3, 6, 6)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, conv.weight, None, 1, 1))


def test_sign_weight_has_no_scale():
    w = torch.randn(2, 2, 1, 1)
    signs, scale = SignWeight()(w)
    assert scale is None and torch.equal(signs, sign(w))


@pytest.mark.parametrize('cfg,kind,cls', [
    ('ste_sign', 'input', SteSign), ('approx_sign', 'input', ApproxSign),
    (dict(type='ste_sign', clip=2.0), 'input', SteSign),
    ('scaled_sign', 'kernel', ScaledSignWeight), ('sign', 'kernel', SignWeight)])
def test_build_binarizer_by_name_and_dict(cfg, kind, cls):
    assert isinstance(build_binarizer(cfg, kind), cls)


def test_build_binarizer_clip_option():
    b = build_binarizer(dict(type='ste_sign', clip=2.0), 'input')
    _, grad = _forward_backward(b, torch.tensor([1.5, 2.5]))
    assert grad.tolist() == [1.0, 0.0]


@pytest.mark.parametrize('cfg,kind,message', [
    ('approx_sgn', 'input', "unknown input binarizer 'approx_sgn'"),
    ('approx_sign', 'kernel', "unknown kernel binarizer 'approx_sign'"),
    (dict(clip=1.0), 'input', 'has no "type" key'),
])
def test_unknown_binarizer_names_give_clear_errors(cfg, kind, message):
    with pytest.raises(KeyError, match=message):
        build_binarizer(cfg, kind)


def test_binarizers_declare_whether_they_are_sign():
    """Export reads these declarations instead of probing the binarizers."""
    edge = torch.tensor([-2.0, -1e-8, 0.0, 1e-8, 2.0])
    for name in ('ste_sign', 'approx_sign', 'hardtanh', 'identity'):
        binarizer = build_binarizer(name, 'input')
        assert binarizer.is_sign == torch.equal(binarizer(edge), sign(edge)), name
    for name, scale_kind in (('sign', None), ('scaled_sign', 'mean_abs'), ('identity', None),
                             ('mean_normalized', None)):
        binarizer = build_binarizer(name, 'kernel')
        signs, scale = binarizer(edge.view(1, -1, 1, 1))
        assert binarizer.is_sign == torch.equal(signs, sign(edge.view(1, -1, 1, 1))), name
        assert binarizer.scale_kind == scale_kind and (scale is None) == (scale_kind is None)


def test_sign_traces_to_one_where_node():
    traced = torch.jit.trace(sign, torch.randn(3))
    kinds = [n.kind() for n in traced.graph.nodes()]
    assert 'aten::where' in kinds and 'aten::mul_' not in kinds
    x = torch.tensor([-1.0, -0.0, 0.0, 2.0, float('nan')])
    assert torch.equal(traced(x), sign(x)) and sign(x).tolist() == [-1, 1, 1, 1, -1]


def test_mean_normalized_weights_have_unit_mean_magnitude_per_channel():
    """The float stage of unscaled signs: real weights of the signs' magnitude, and gradient to
    the latent weights."""
    weight = (torch.randn(4, 3, 3, 3) * torch.tensor([0.01, 0.1, 1.0, 5.0]).view(4, 1, 1, 1))
    weight.requires_grad_(True)
    relaxed, scale = build_binarizer('mean_normalized', 'kernel')(weight)
    assert scale is None
    torch.testing.assert_close(relaxed.abs().flatten(1).mean(1), torch.ones(4))
    assert torch.equal(torch.sign(relaxed), torch.sign(weight))
    (relaxed * torch.randn_like(relaxed)).sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


@pytest.mark.parametrize('name', ['sign', 'scaled_sign', 'identity', 'mean_normalized'])
def test_float_relaxation_is_a_real_valued_kernel_binarizer(name):
    relaxation = build_binarizer(build_binarizer(name, 'kernel').float_relaxation, 'kernel')
    assert not relaxation.is_sign
