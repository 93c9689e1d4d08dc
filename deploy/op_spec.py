"""The library's ONNX ops (``bnn_tasks::BinaryConv2d``, ``bnn_tasks::MultiLevelRoiAlign``) as
Python code sees them: the facts of ``deploy/OP_CONTRACT.md`` that export, graph passes,
runtime, benchmark and tests share.

Plain constants and integer helpers only (no torch, onnx or numpy), so any deploy module can
import it cheaply. The C++ side states the same facts in ``csrc/binary_conv_op.h``; the kernel
tests check both sides agree.
"""
from typing import List, Tuple

DOMAIN = 'bnn_tasks'
OP_TYPE = 'BinaryConv2d'
OP_VERSION = 1  # the only version of the domain the library registers
QUALIFIED_NAME = f'{DOMAIN}::{OP_TYPE}'

# RoI features of FPN detectors: each RoI pooled on its own level (OP_CONTRACT.md).
ROI_ALIGN_OP_TYPE = 'MultiLevelRoiAlign'
ROI_ALIGN_QUALIFIED_NAME = f'{DOMAIN}::{ROI_ALIGN_OP_TYPE}'

ONNX_OPSET = 17  # standard ops; RoiAlign with half_pixel (mmcv aligned=True) needs >= 16
# onnxruntime 1.31 loads IR version <= 13 while onnx 1.23 writes 14 by default.
IR_VERSION = 10

# Packed weights [C_out, kh, kw, ceil(C_in / 32)], a set bit = -1 (see deploy/packing.py).
WEIGHT_LAYOUT = 'OHWI32'
WORD_BITS = 32

# Positional inputs; optional ones may be given as the empty name ''.
INPUT_NAMES = ('X', 'W_packed', 'post_scale', 'post_bias', 'row_scale', 'col_scale', 'residual')
X_INPUT, WEIGHT_INPUT, POST_SCALE_INPUT, POST_BIAS_INPUT = 0, 1, 2, 3
ROW_SCALE_INPUT, COL_SCALE_INPUT, RESIDUAL_INPUT = 4, 5, 6


def is_binary_conv(node) -> bool:
    """Whether an ``onnx.NodeProto`` is a ``BinaryConv2d`` node."""
    return node.domain == DOMAIN and node.op_type == OP_TYPE


def has_input(node, index: int) -> bool:
    """Whether an ``onnx.NodeProto`` gives its optional input ``index`` (absent or ``''``: not)."""
    return len(node.input) > index and node.input[index] != ''


def is_library_node(node) -> bool:
    """Whether an ``onnx.NodeProto`` needs the native library (any op of our domain)."""
    return node.domain == DOMAIN


def opset_imports(with_custom_domain: bool = True) -> List[Tuple[str, int]]:
    """``(domain, version)`` pairs a model with (or without) our op declares."""
    pairs = [('', ONNX_OPSET)]
    if with_custom_domain:
        pairs.append((DOMAIN, OP_VERSION))
    return pairs


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int) -> int:
    """Output length along one axis: ``floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1``
    (the contract's ``Ho``/``Wo``, ONNX Conv's and PyTorch's formula)."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1
