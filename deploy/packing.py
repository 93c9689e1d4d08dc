"""Bit packing for ``bnn_tasks::BinaryConv2d`` (layout ``"OHWI32"``, ``deploy/OP_CONTRACT.md``).

Bit order, for weights and activations alike:

* a value is reduced to its sign, ``sgn(v) = +1 if v >= 0 else -1`` (so ``sgn(0) = +1``);
* a **set bit means -1**, a clear bit +1;
* input channel ``c`` goes to 32-bit word ``c // 32``, bit ``c % 32`` (least significant first);
  bits past the channel count in the last word are 0;
* words are stored as int32 (the same bit pattern as uint32).

Weights ``[C_out, C_in, kh, kw]`` pack to ``[C_out, kh, kw, ceil(C_in / 32)]``; activations
``[N, C, H, W]`` (only for tests: the kernel packs its float input itself) to
``[N, H, W, ceil(C / 32)]``.
"""
from typing import Union

import numpy as np

from .op_spec import WEIGHT_LAYOUT, WORD_BITS  # noqa: F401  (WEIGHT_LAYOUT: this module's layout)

ArrayLike = Union[np.ndarray, 'torch.Tensor']  # noqa: F821


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, 'detach'):  # torch.Tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def words_per_pixel(channels: int) -> int:
    """32-bit words holding ``channels`` sign bits."""
    return (int(channels) + WORD_BITS - 1) // WORD_BITS


def _pack_last_axis(negative: np.ndarray) -> np.ndarray:
    """Pack a boolean array's last axis (True = -1) into int32 words, LSB first."""
    channels = negative.shape[-1]
    words = words_per_pixel(channels)
    padded = np.zeros(negative.shape[:-1] + (words * WORD_BITS,), dtype=np.uint64)
    padded[..., :channels] = negative
    bits = padded.reshape(negative.shape[:-1] + (words, WORD_BITS))
    weights = np.left_shift(np.uint64(1), np.arange(WORD_BITS, dtype=np.uint64))
    packed = (bits * weights).sum(axis=-1, dtype=np.uint64).astype(np.uint32)
    return packed.view(np.int32)


def pack_weights(sign_w: ArrayLike) -> np.ndarray:
    """Pack weights ``[C_out, C_in, kh, kw]`` to int32 ``[C_out, kh, kw, ceil(C_in/32)]``.

    Any real values are accepted: only their sign counts (``>= 0`` is +1). Returns a
    C-contiguous ``np.int32`` array in layout :data:`WEIGHT_LAYOUT`.
    """
    w = _as_numpy(sign_w)
    if w.ndim != 4:
        raise ValueError(f'pack_weights expects [C_out, C_in, kh, kw] weights, got shape {w.shape}')
    if 0 in w.shape:
        raise ValueError(f'pack_weights got an empty weight tensor of shape {w.shape}')
    negative = ~(w >= 0)  # NaN counts as -1, like the kernel
    return np.ascontiguousarray(_pack_last_axis(negative.transpose(0, 2, 3, 1)))


def pack_activations(x: ArrayLike) -> np.ndarray:
    """Pack activations ``[N, C, H, W]`` to int32 ``[N, H, W, ceil(C/32)]`` (what the kernel does)."""
    a = _as_numpy(x)
    if a.ndim != 4:
        raise ValueError(f'pack_activations expects [N, C, H, W], got shape {a.shape}')
    return np.ascontiguousarray(_pack_last_axis(~(a >= 0).transpose(0, 2, 3, 1)))


def unpack_weights(packed: ArrayLike, in_channels: int) -> np.ndarray:
    """Inverse of :func:`pack_weights`: float32 +-1 weights ``[C_out, C_in, kh, kw]``."""
    p = _as_numpy(packed)
    if p.ndim != 4 or p.shape[-1] != words_per_pixel(in_channels):
        raise ValueError(f'packed weights of shape {p.shape} do not hold {in_channels} channels')
    words = p.astype(np.int32).view(np.uint32).astype(np.uint64)
    shifts = np.arange(WORD_BITS, dtype=np.uint64)
    bits = (words[..., None] >> shifts) & np.uint64(1)
    bits = bits.reshape(p.shape[:-1] + (-1,))[..., :in_channels]
    signs = np.where(bits == 1, -1.0, 1.0).astype(np.float32)
    return np.ascontiguousarray(signs.transpose(0, 3, 1, 2))
