"""Float reference of ``bnn_tasks::BinaryConv2d`` (``deploy/OP_CONTRACT.md``).

Both the exporter and the native kernel are tested against this function. The dot product is
computed in float64 (exact for any realistic size; the kernel's integer result is exact too),
then the output transform runs in float32 in the contract's order, which is also the kernel's:
``((dot * post_scale) * row_scale) * col_scale + post_bias + residual``.
"""
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from bnn_tasks.binarizers import sign  # +1 if x >= 0 else -1 (NaN -> -1), as the kernel

IntPair = Union[int, Sequence[int]]


def _pair(v: IntPair):
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(i) for i in v)


def _pads(padding) -> tuple:
    """``int`` | ``(ph, pw)`` | ONNX ``(top, left, bottom, right)`` -> ONNX order."""
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        return (padding[0], padding[1], padding[0], padding[1])
    if len(padding) == 4:
        return padding
    raise ValueError(f'padding must be an int, (ph, pw) or (top, left, bottom, right), got {padding}')


def _tensor(v) -> torch.Tensor:
    return v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))


def binary_conv2d_reference(x, sign_w, post_scale, post_bias, stride: IntPair = 1,
                            padding=0, dilation: IntPair = 1,
                            row_scale=None, col_scale=None,
                            residual=None) -> torch.Tensor:
    """Contract output ``[N, C_out, Ho, Wo]`` (float32) for float input ``x`` [N, C_in, H, W].

    ``sign_w``: weights [C_out, C_in, kh, kw] (only signs count). ``padding`` as in
    :func:`_pads`. Inputs may be numpy arrays or tensors.
    """
    x = _tensor(x).to(torch.float32)
    w = sign(_tensor(sign_w).to(torch.float32))
    pt, pl, pb, pr = _pads(padding)
    xs = F.pad(sign(x).double(), (pl, pr, pt, pb))  # zero padding of the sign tensor
    dot = F.conv2d(xs, w.double(), None, _pair(stride), 0, _pair(dilation)).float()
    y = dot * _tensor(post_scale).float().view(1, -1, 1, 1)
    if row_scale is not None:
        y = y * _tensor(row_scale).float().view(1, 1, -1, 1)
    if col_scale is not None:
        y = y * _tensor(col_scale).float().view(1, 1, 1, -1)
    y = y + _tensor(post_bias).float().view(1, -1, 1, 1)
    if residual is not None:
        y = y + _tensor(residual).float()
    return y
