"""Single-node ONNX models: one ``bnn_tasks::BinaryConv2d`` or one float ``Conv``.

Used by the kernel tests and ``tools/benchmark.py``; both models pass ``onnx.checker``.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .packing import WEIGHT_LAYOUT, pack_weights

OP_DOMAIN = 'bnn_tasks'
OP_TYPE = 'BinaryConv2d'
OP_VERSION = 1
ONNX_OPSET = 17


def conv_output_size(size: int, kernel: int, stride: int, pad0: int, pad1: int,
                     dilation: int) -> int:
    return (size + pad0 + pad1 - dilation * (kernel - 1) - 1) // stride + 1


def binary_conv_node(inputs: Sequence[str], output: str, in_channels: int, out_channels: int,
                     kernel_shape: Tuple[int, int], strides: Tuple[int, int],
                     pads: Tuple[int, int, int, int], dilations: Tuple[int, int],
                     weight_layout: str = WEIGHT_LAYOUT, name: str = 'binary_conv'):
    """A ``bnn_tasks::BinaryConv2d`` NodeProto; ``inputs`` positional per the contract ('' = omitted)."""
    return helper.make_node(
        OP_TYPE, list(inputs), [output], name=name, domain=OP_DOMAIN,
        in_channels=int(in_channels), out_channels=int(out_channels),
        kernel_shape=[int(k) for k in kernel_shape], strides=[int(s) for s in strides],
        pads=[int(p) for p in pads], dilations=[int(d) for d in dilations],
        weight_layout=weight_layout)


def _model(graph, domains):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in domains],
                              producer_name='bnn_tasks')
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def binary_conv_model(sign_w: np.ndarray, post_scale: np.ndarray, post_bias: np.ndarray,
                      input_shape: Sequence[int], stride=(1, 1), pads=(0, 0, 0, 0),
                      dilation=(1, 1), row_scale: Optional[np.ndarray] = None,
                      col_scale: Optional[np.ndarray] = None, residual: bool = False,
                      packed_weights: Optional[np.ndarray] = None,
                      attribute_overrides: Optional[dict] = None) -> onnx.ModelProto:
    """Model ``Y = BinaryConv2d(X[, residual])`` with the weights and scales as initializers.

    ``input_shape`` is ``[N, C, H, W]`` (N may be a string for a dynamic batch). With
    ``residual=True`` the graph has a second input ``residual``. ``packed_weights`` and
    ``attribute_overrides`` let tests build deliberately inconsistent models.
    """
    sign_w = np.asarray(sign_w, dtype=np.float32)
    out_channels, in_channels, kh, kw = sign_w.shape
    stride, dilation = tuple(stride), tuple(dilation)
    pads = tuple(pads)
    packed = pack_weights(sign_w) if packed_weights is None else np.asarray(packed_weights)
    inits = [numpy_helper.from_array(packed, 'W_packed'),
             numpy_helper.from_array(np.asarray(post_scale, np.float32), 'post_scale'),
             numpy_helper.from_array(np.asarray(post_bias, np.float32), 'post_bias')]
    inputs = ['X', 'W_packed', 'post_scale', 'post_bias', '', '', '']
    if row_scale is not None:
        inits.append(numpy_helper.from_array(np.asarray(row_scale, np.float32), 'row_scale'))
        inputs[4] = 'row_scale'
    if col_scale is not None:
        inits.append(numpy_helper.from_array(np.asarray(col_scale, np.float32), 'col_scale'))
        inputs[5] = 'col_scale'
    n, _, h, w = input_shape
    ho = conv_output_size(h, kh, stride[0], pads[0], pads[2], dilation[0]) if isinstance(h, int) else h
    wo = conv_output_size(w, kw, stride[1], pads[1], pads[3], dilation[1]) if isinstance(w, int) else w
    graph_inputs = [helper.make_tensor_value_info('X', TensorProto.FLOAT, list(input_shape))]
    if residual:
        inputs[6] = 'residual'
        graph_inputs.append(helper.make_tensor_value_info(
            'residual', TensorProto.FLOAT, [n, out_channels, ho, wo]))
    while inputs and inputs[-1] == '':
        inputs.pop()
    attrs = dict(in_channels=in_channels, out_channels=out_channels, kernel_shape=(kh, kw),
                 strides=stride, pads=pads, dilations=dilation)
    attrs.update(attribute_overrides or {})
    node = binary_conv_node(inputs, 'Y', **attrs)
    graph = helper.make_graph(
        [node], 'bnn_tasks_binary_conv', graph_inputs,
        [helper.make_tensor_value_info('Y', TensorProto.FLOAT, [n, out_channels, ho, wo])],
        initializer=inits)
    return _model(graph, [('', ONNX_OPSET), (OP_DOMAIN, OP_VERSION)])


def float_conv_model(weight: np.ndarray, bias: Optional[np.ndarray], input_shape: Sequence[int],
                     stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)) -> onnx.ModelProto:
    """Model ``Y = Conv(X, weight, bias)``: ONNX Runtime's own float conv of the same shape."""
    weight = np.asarray(weight, dtype=np.float32)
    out_channels, _, kh, kw = weight.shape
    inits = [numpy_helper.from_array(weight, 'weight')]
    inputs = ['X', 'weight']
    if bias is not None:
        inits.append(numpy_helper.from_array(np.asarray(bias, np.float32), 'bias'))
        inputs.append('bias')
    node = helper.make_node('Conv', inputs, ['Y'], name='float_conv', kernel_shape=[kh, kw],
                            strides=list(stride), pads=list(pads), dilations=list(dilation))
    n, _, h, w = input_shape
    ho = conv_output_size(h, kh, stride[0], pads[0], pads[2], dilation[0])
    wo = conv_output_size(w, kw, stride[1], pads[1], pads[3], dilation[1])
    graph = helper.make_graph(
        [node], 'float_conv', [helper.make_tensor_value_info('X', TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info('Y', TensorProto.FLOAT, [n, out_channels, ho, wo])],
        initializer=inits)
    return _model(graph, [('', ONNX_OPSET)])
