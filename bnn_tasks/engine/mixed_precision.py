"""Mixed-precision training on CPUs: bfloat16 autocast, what ``tools/train.py --amp`` turns on.

mmengine's ``AmpOptimWrapper`` is CUDA's (float16 with a loss scaler) and refuses a CPU. On a
CPU with bfloat16 dot-product instructions (AVX512-BF16, AMX-BF16) oneDNN runs convolutions and
matmuls in bfloat16 at about twice the float32 rate, and a detection step is mostly
convolutions: measured on a 2-vCPU AMD EPYC with AVX512-BF16, an SSD256 step 0.45 -> 0.27 s
(ResNet-18) and 0.53 -> 0.36 s (Bi-Real-18), so a wall-clock budget buys 1.5-1.7x the
iterations. Only the ops autocast lists run in bfloat16; parameters, optimizer state and the
losses autocast keeps in float32 stay float32, so bfloat16 keeps float32's range and needs no
loss scaling. A binary convolution's operands are +-1 (times a scale), exact in bfloat16.

Validation and test stay float32 (mmengine's loops run outside the wrapper's context).
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from ..machine import NATIVE_BF16_FLAGS, has_native_bf16

CPU_AMP_WRAPPER = 'CPUAmpOptimWrapper'


class MixedPrecisionError(ValueError):
    """``--amp`` cannot be honoured on this machine or with this config."""


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """mmengine's ``OptimWrapper`` whose forward context is ``torch.autocast('cpu',
    bfloat16)``: ``model.train_step`` runs the forward (and so the backward) inside it."""

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


def use_mixed_precision(cfg, cuda: bool = None, native_bf16: bool = None) -> str:
    """Switch ``cfg.optim_wrapper`` (in place) to mixed precision; returns the wrapper type.

    On CUDA: mmengine's ``AmpOptimWrapper`` with dynamic loss scaling (what mmdet's ``--amp``
    does). On a CPU: ``CPUAmpOptimWrapper``, only where bfloat16 is native; elsewhere it would
    slow training down, so that is an error, not a silent float32 run.
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    native_bf16 = has_native_bf16() if native_bf16 is None else native_bf16
    wrapper = cfg.get('optim_wrapper')
    if not wrapper or wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        kind = wrapper.get('type') if wrapper else None
        raise MixedPrecisionError(
            f'--amp needs optim_wrapper.type OptimWrapper in the config (got {kind!r})')
    if cuda:
        wrapper.type, wrapper.loss_scale = 'AmpOptimWrapper', 'dynamic'
    elif native_bf16:
        wrapper.type = CPU_AMP_WRAPPER
    else:
        raise MixedPrecisionError(
            '--amp on a CPU needs bfloat16 in hardware (CPU flag '
            f'{" or ".join(NATIVE_BF16_FLAGS)}); this CPU has neither, and emulated bfloat16 '
            'trains slower than float32')
    return wrapper.type
