"""Binarizers: the sign functions of 1-bit networks and their training gradients.

Two kinds, used declaratively by binary layers (like larq's quantizers):

* input (activation) binarizers map a real tensor to {-1, +1};
* kernel (weight) binarizers map latent real weights to ``(signs, scale)`` where ``scale`` is a
  per-output-channel factor or ``None``.

Convention, everywhere in bnn_tasks (training, export and the native kernel):
``sign(0) = +1``. A binary value is never 0.

Each binarizer declares what it computes, so export asks instead of probing: ``is_sign`` (its
forward is :func:`sign`, what the bit-packed kernel computes) and, for kernel binarizers,
``scale_kind`` (``None`` or ``'mean_abs'``: the per-output-channel scale it returns) and
``float_relaxation`` (the real-valued kernel binarizer of the float stage of two-stage
training: its weights have the per-channel magnitude the binary ones will have, so binarizing
changes the signs' detail, not every conv's output scale). Input binarizers also declare
``gradient_bound``: beyond ``|x| = gradient_bound`` their backward passes no gradient (``inf``:
it passes gradient everywhere), which analysis reads to tell how much of a layer's input trains
nothing (``tools/analysis_tools/binary_input_stats.py``).

Names accepted by :func:`build_binarizer`:

====================  ======  ==============================================================
name                  kind    forward / backward
====================  ======  ==============================================================
``ste_sign``          input   sign; clipped straight-through gradient 1 on ``|x| <= 1``
``approx_sign``       input   sign; Bi-Real ApproxSign gradient ``2 - 2|x|`` on ``|x| < 1``
``scaled_sign``       kernel  sign with per-output-channel ``mean|W|`` (XNOR-Net / Bi-Real)
``sign``              kernel  sign, no analytic scale (XNOR-Net++ learns its scales)
``hardtanh``          input   ``clip(x, -1, 1)``, real-valued: the float stage of two-stage training
                              (Bi-Real Net pretrains with it in place of ReLU, so the float network
                              already sees sign's range and is nonlinear where sign will be)
``mean_normalized``   kernel  ``W / mean|W|`` per output channel, real-valued: the float stage of
                              ``sign`` (unscaled signs have mean magnitude 1; raw latent weights
                              about 0.01-0.03, so a learned output scale fitted to them would grow
                              a conv's output 35-120x at binarization)
``identity``          both    no binarization (useful for ablations / float twins); the float
                              stage of ``scaled_sign``
====================  ======  ==============================================================

:class:`GradualBinarizer` (not built by name) blends a binarizer with its float-stage relaxation
during the binarization warm-up of a binary run that starts from float weights.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn


def sign(x: Tensor) -> Tensor:
    """Binary sign with ``sign(0) = +1`` and ``sign(NaN) = -1`` (``torch.sign`` would give 0).

    The one definition: training, the export's float twin and the kernel's float reference
    (``bnn_tasks.deploy.reference``) all call it.
    """
    if torch.jit.is_tracing():
        # An exported graph gets one Where node with scalar constants (no activation-sized
        # constants, no Cast/Mul/Sub chain).
        return torch.where(x >= 0, x.new_tensor(1.0), x.new_tensor(-1.0))
    # One comparison and two in-place ops: this runs on every activation of every binary layer
    # (about twice as fast as the Where form on CPU).
    return x.ge(0).to(x.dtype).mul_(2).sub_(1)


class _SignWithClippedSTE(torch.autograd.Function):
    """sign forward; gradient passed through where ``|x| <= clip``, zero outside."""

    @staticmethod
    def forward(ctx, x: Tensor, clip: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.clip = clip
        return sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.clip).to(grad.dtype), None


class _ApproxSign(torch.autograd.Function):
    """Bi-Real Net's ApproxSign: sign forward, piecewise-polynomial gradient.

    The backward is the derivative of ``2x + x^2`` (x < 0) / ``2x - x^2`` (x >= 0) on ``|x| < 1``,
    i.e. ``2 - 2|x|``, and 0 outside.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * (2.0 - 2.0 * x.abs()).clamp(min=0.0)


def ste_sign(x: Tensor, clip: float = 1.0) -> Tensor:
    return _SignWithClippedSTE.apply(x, clip)


def approx_sign(x: Tensor) -> Tensor:
    return _ApproxSign.apply(x)


# ---------------------------------------------------------------------------------------------
# Modules, so that a layer's binarizers show up in its repr and in its config.


class SteSign(nn.Module):
    kind = 'input'
    is_sign = True

    def __init__(self, clip: float = 1.0):
        super().__init__()
        self.clip = float(clip)

    @property
    def gradient_bound(self) -> float:
        return self.clip

    def forward(self, x: Tensor) -> Tensor:
        return ste_sign(x, self.clip)

    def extra_repr(self) -> str:
        return f'clip={self.clip}'


class ApproxSign(nn.Module):
    kind = 'input'
    is_sign = True
    gradient_bound = 1.0

    def forward(self, x: Tensor) -> Tensor:
        return approx_sign(x)


class Identity(nn.Module):
    """No activation binarization (ablations; a binary block then has no nonlinearity)."""
    kind = 'input'
    is_sign = False
    gradient_bound = float('inf')

    def forward(self, x: Tensor) -> Tensor:
        return x


class HardTanh(nn.Module):
    """``clip(x, -1, 1)``: the real-valued relaxation of sign for the float stage of two-stage
    training. A binary block has no other nonlinearity, so with ``identity`` in its place the
    float backbone would be linear."""
    kind = 'input'
    is_sign = False
    gradient_bound = 1.0

    def forward(self, x: Tensor) -> Tensor:
        return x.clamp(-1.0, 1.0)


class IdentityWeight(nn.Module):
    """No weight binarization: ``(W, None)``, the kernel-binarizer interface."""
    kind = 'kernel'
    is_sign = False
    scale_kind = None
    float_relaxation = 'identity'

    def forward(self, weight: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        return weight, None


def per_output_channel(values: Tensor, weight: Tensor) -> Tensor:
    """``values[C_out]`` shaped to broadcast over ``weight``'s output channels."""
    return values.view(-1, *([1] * (weight.dim() - 1)))


def channel_mean_abs(weight: Tensor) -> Tensor:
    """``mean|W|`` per output channel (shape ``[C_out]``): XNOR-Net's weight scale."""
    return weight.abs().flatten(1).mean(dim=1)


class MeanNormalizedWeight(nn.Module):
    """Real-valued weights scaled to mean magnitude 1 per output channel: ``(W / mean|W|, None)``.

    The float stage of unscaled ``sign`` weights (XNOR-Net++): the conv's learned output scale
    then fits weights of the magnitude the signs will have.
    """
    kind = 'kernel'
    is_sign = False
    scale_kind = None
    float_relaxation = 'mean_normalized'

    def forward(self, weight: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        magnitude = channel_mean_abs(weight).clamp_min(1e-12)
        return weight / per_output_channel(magnitude, weight), None


class SignWeight(nn.Module):
    """Weight signs with a clipped straight-through gradient to the latent weights."""
    kind = 'kernel'
    is_sign = True
    scale_kind = None
    float_relaxation = 'mean_normalized'

    def __init__(self, clip: float = 1.0):
        super().__init__()
        self.clip = float(clip)

    def forward(self, weight: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        return ste_sign(weight, self.clip), None

    def extra_repr(self) -> str:
        return f'clip={self.clip}'


class ScaledSignWeight(SignWeight):
    """Weight signs times a per-output-channel scale ``mean|W|`` (XNOR-Net, Bi-Real).

    The scale is returned separately (shape ``[C_out]``) so the conv can apply it to its output,
    which is what the exported kernel does too. Gradients reach the latent weights through both
    the straight-through sign and the scale.
    """
    scale_kind = 'mean_abs'
    # sign(W) x mean|W| has the magnitude of W itself
    float_relaxation = 'identity'

    def forward(self, weight: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        return ste_sign(weight, self.clip), channel_mean_abs(weight)


class GradualBinarizer(nn.Module):
    """``(1 - p) * relaxed + p * binary`` while training, ``binary`` in evaluation.

    The binarization warm-up of the recipe's stage 2
    (:class:`bnn_tasks.engine.BinarizationWarmupHook`): it wraps a binary layer's binarizer,
    ``relaxed`` being the float stage's (``hardtanh`` / the kernel's ``float_relaxation``),
    raises ``progress`` p from 0 to 1 over the first part of the stage, then puts ``binary``
    back, so the network moves from the float stage's function to the binary one in steps
    rather than at once. Kernel binarizers fold the binary scale into the blended weights
    (``scale`` is then ``None``). A training-time wrapper only: export never sees it.
    """
    is_sign = False
    scale_kind = None

    def __init__(self, relaxed: nn.Module, binary: nn.Module):
        super().__init__()
        if relaxed.kind != binary.kind:
            raise ValueError(f'cannot blend a {relaxed.kind} binarizer with a {binary.kind} one')
        self.kind = binary.kind
        self.relaxed, self.binary = relaxed, binary
        self.progress = 0.0

    @property
    def gradient_bound(self) -> float:
        return max(self.relaxed.gradient_bound, self.binary.gradient_bound)

    @property
    def float_relaxation(self):
        return self.binary.float_relaxation

    def _mix(self, relaxed: Tensor, binary: Tensor) -> Tensor:
        return relaxed * (1.0 - self.progress) + binary * self.progress

    def forward(self, x: Tensor):
        if not self.training or self.progress >= 1.0:
            return self.binary(x)
        if self.kind == 'input':
            return self._mix(self.relaxed(x), self.binary(x))
        return self._mix(_scaled(*self.relaxed(x)), _scaled(*self.binary(x))), None

    def extra_repr(self) -> str:
        return f'progress={self.progress:.4f}'


def _scaled(weight: Tensor, scale: Optional[Tensor]) -> Tensor:
    """A kernel binarizer's ``(weight, scale)`` as one weight tensor."""
    if scale is None:
        return weight
    return weight * per_output_channel(scale, weight)


_INPUT_BINARIZERS = {'ste_sign': SteSign, 'approx_sign': ApproxSign, 'hardtanh': HardTanh,
                     'identity': Identity}
_KERNEL_BINARIZERS = {'scaled_sign': ScaledSignWeight, 'sign': SignWeight,
                      'mean_normalized': MeanNormalizedWeight, 'identity': IdentityWeight}

BinarizerCfg = Union[None, str, dict, nn.Module]


def build_binarizer(cfg: BinarizerCfg, kind: str) -> nn.Module:
    """Build an input (``kind='input'``) or kernel (``kind='kernel'``) binarizer.

    ``cfg`` is a name from the table in this module's docstring, a dict ``dict(type=name, **kw)``,
    an already built module, or ``None`` (= ``identity``).
    """
    if kind not in ('input', 'kernel'):
        raise ValueError(f"binarizer kind must be 'input' or 'kernel', got {kind!r}")
    if isinstance(cfg, nn.Module):
        return cfg
    table = _INPUT_BINARIZERS if kind == 'input' else _KERNEL_BINARIZERS
    if cfg is None:
        cfg = 'identity'
    if isinstance(cfg, str):
        name, kwargs = cfg, {}
    elif isinstance(cfg, dict):
        if 'type' not in cfg:
            raise KeyError(f'{kind} binarizer config {cfg!r} has no "type" key')
        kwargs = dict(cfg)
        name = kwargs.pop('type')
    else:
        raise TypeError(f'{kind} binarizer must be a name, a dict or a module, got {type(cfg)}')
    if name not in table:
        raise KeyError(f'unknown {kind} binarizer {name!r}; known {kind} binarizers: '
                       f'{", ".join(sorted(table))}')
    return table[name](**kwargs)
