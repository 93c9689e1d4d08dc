"""Single-node ONNX models: one ``bnn_tasks::BinaryConv2d`` or one float ``Conv``.

Used by the kernel tests and ``tools/benchmark.py``; both models pass ``onnx.checker``.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .op_spec import (COL_SCALE_INPUT, DOMAIN, INPUT_NAMES, IR_VERSION, OP_TYPE,
                      POST_BIAS_INPUT, POST_SCALE_INPUT, RESIDUAL_INPUT, ROW_SCALE_INPUT,
                      WEIGHT_INPUT, WEIGHT_LAYOUT, X_INPUT, conv_output_size, opset_imports)
from .packing import pack_weights


def binary_conv_node(inputs: Sequence[str], output: str, in_channels: int, out_channels: int,
                     kernel_shape: Tuple[int, int], strides: Tuple[int, int],
                     pads: Tuple[int, int, int, int], dilations: Tuple[int, int],
                     weight_layout: str = WEIGHT_LAYOUT, name: str = 'binary_conv'):
    """A ``bnn_tasks::BinaryConv2d`` NodeProto; ``inputs`` positional per the contract ('' = omitted)."""
    return helper.make_node(
        OP_TYPE, list(inputs), [output], name=name, domain=DOMAIN,
        in_channels=int(in_channels), out_channels=int(out_channels),
        kernel_shape=[int(k) for k in kernel_shape], strides=[int(s) for s in strides],
        pads=[int(p) for p in pads], dilations=[int(d) for d in dilations],
        weight_layout=weight_layout)


def _model(graph, with_custom_domain: bool):
    model = helper.make_model(graph, producer_name='bnn_tasks', opset_imports=[
        helper.make_opsetid(d, v) for d, v in opset_imports(with_custom_domain)])
    model.ir_version = IR_VERSION
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
    # Graph names are the contract's input names; '' leaves an optional input out.
    constants = {WEIGHT_INPUT: packed, POST_SCALE_INPUT: post_scale, POST_BIAS_INPUT: post_bias,
                 ROW_SCALE_INPUT: row_scale, COL_SCALE_INPUT: col_scale}
    inputs = [''] * len(INPUT_NAMES)
    inputs[X_INPUT] = INPUT_NAMES[X_INPUT]
    inits = []
    for index, value in constants.items():
        if value is not None:
            inputs[index] = INPUT_NAMES[index]
            value = np.asarray(value) if index == WEIGHT_INPUT else np.asarray(value, np.float32)
            inits.append(numpy_helper.from_array(value, inputs[index]))
    n, _, h, w = input_shape
    ho = conv_output_size(h, kh, stride[0], pads[0], pads[2], dilation[0]) if isinstance(h, int) else h
    wo = conv_output_size(w, kw, stride[1], pads[1], pads[3], dilation[1]) if isinstance(w, int) else w
    graph_inputs = [helper.make_tensor_value_info(inputs[X_INPUT], TensorProto.FLOAT,
                                                  list(input_shape))]
    if residual:
        inputs[RESIDUAL_INPUT] = INPUT_NAMES[RESIDUAL_INPUT]
        graph_inputs.append(helper.make_tensor_value_info(
            inputs[RESIDUAL_INPUT], TensorProto.FLOAT, [n, out_channels, ho, wo]))
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
    return _model(graph, with_custom_domain=True)


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
    return _model(graph, with_custom_domain=False)
