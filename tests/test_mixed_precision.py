"""tools/train.py --amp: bfloat16 autocast on CPUs that have bfloat16 in hardware
(bnn_tasks.engine.mixed_precision)."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from torch import nn

from bnn_tasks.engine.mixed_precision import (CPUAmpOptimWrapper, MixedPrecisionError,
                                              use_mixed_precision)
from bnn_tasks.layers.binary_conv import BinaryConv2d
from bnn_tasks.machine import has_native_bf16


def _cfg(**wrapper):
    return Config(dict(optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3), **wrapper)))


def test_native_bf16_is_read_from_the_cpu_flags():
    assert has_native_bf16({'avx2', 'avx512f', 'avx512_bf16'})
    assert has_native_bf16({'avx2', 'amx_tile', 'amx_bf16'})
    assert not has_native_bf16({'avx2', 'fma', 'avx512f', 'avx512_vnni'})
    assert not has_native_bf16(frozenset())


def test_amp_picks_the_wrapper_of_the_device_and_refuses_emulated_bf16():
    cfg = _cfg()
    assert use_mixed_precision(cfg, cuda=False, native_bf16=True) == 'CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    cfg = _cfg(type='OptimWrapper')
    use_mixed_precision(cfg, cuda=True, native_bf16=False)
    assert (cfg.optim_wrapper.type, cfg.optim_wrapper.loss_scale) == ('AmpOptimWrapper',
                                                                      'dynamic')
    with pytest.raises(MixedPrecisionError, match='avx512_bf16 or amx_bf16'):
        use_mixed_precision(_cfg(), cuda=False, native_bf16=False)
    with pytest.raises(MixedPrecisionError, match="optim_wrapper.type.*'AmpOptimWrapper'"):
        use_mixed_precision(_cfg(type='AmpOptimWrapper'), cuda=False, native_bf16=True)


def test_the_wrapper_runs_the_forward_in_bf16_and_keeps_float32_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                          nn.LazyLinear(2))
    x = torch.randn(2, 3, 8, 8)
    model(x)  # materialize the lazy layer
    wrapper = build_optim_wrapper(model, dict(type='CPUAmpOptimWrapper',
                                              optimizer=dict(type='AdamW', lr=1e-2)))
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.optim_context(model):
        features = model[0](x)
        loss = model(x).float().pow(2).mean()
    assert features.dtype == torch.bfloat16
    wrapper.backward(loss)  # update_params would clear the gradients: look at them first
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
    wrapper.step()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert model[0](x).dtype == torch.float32  # outside the context: float32 again
    # no loss scaler: the state is the plain wrapper's, checkpoints load in either precision
    assert set(wrapper.state_dict()) == {'state', 'param_groups'}


def test_a_binary_convolution_is_exact_in_bf16_up_to_the_output_rounding():
    torch.manual_seed(0)
    conv = BinaryConv2d(64, 32, 3, padding=1, kernel_quantizer='sign')
    x = torch.randn(2, 64, 10, 10)
    exact = conv(x)  # integer sums of +-1 products, up to 64 * 9
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = conv(x)
    assert mixed.dtype == torch.bfloat16
    # +-1 operands are exact in bf16 and accumulate in float32: only the bf16 output rounds
    torch.testing.assert_close(mixed.float(), exact.to(torch.bfloat16).float(), rtol=0, atol=0)


def test_mmcv_nms_and_roi_align_take_bf16_tensors():
    import bnn_tasks  # noqa: F401  (applies bnn_tasks.compat.mmcv_ops_bf16)
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes.bfloat16(), scores.bfloat16(), 0.5)
    assert keep.tolist() == nms(boxes, scores, 0.5)[1].tolist() == [0, 2]
    torch.manual_seed(0)
    features = torch.randn(1, 4, 16, 16, requires_grad=True)
    rois = torch.tensor([[0, 1.0, 1.0, 8.0, 8.0]])
    roi_align = RoIAlign((2, 2), 1.0, 0)
    pooled = roi_align(features.bfloat16(), rois.bfloat16())
    assert pooled.dtype == torch.bfloat16  # the map's type: mmdet's extractor writes it there
    exact = roi_align(features.bfloat16().float(), rois)
    torch.testing.assert_close(pooled, exact.bfloat16(), rtol=0, atol=0)
    pooled.sum().backward()  # through the cast, back to the bf16 features' source
    assert features.grad is not None and features.grad.abs().sum() > 0
