"""FLOPs, BOPs, OPs and parameters of an exported ONNX graph (same conventions and report as
``bnn_tasks.analysis.complexity``).

* ``bnn_tasks::BinaryConv2d``: binary MACs ``prod(output shape) * C_in * kh * kw`` and
  ``C_out * C_in * kh * kw`` 1-bit weights (from the node's attributes: the packed int32
  initializer carries word padding); its post-op initializers (scale, bias, row/column scales)
  are float parameters.
* ``Conv``, ``ConvTranspose``, ``Gemm``, ``MatMul``: float MACs; their constant operands are
  float parameters. ``BatchNormalization``: float parameters only (all four inputs are stored).

Shapes come from ONNX shape inference (the exporter annotates the custom nodes' outputs, which
shape inference cannot see through). A node whose shapes stay unknown (data-dependent, e.g.
after NonMaxSuppression in a detector) is listed in ``uncounted``, never guessed.

Parameter counts differ from the PyTorch counter where the export changes the graph: the
exporter folds a BatchNorm that follows a float conv into that conv (C bias values instead of
2C norm parameters), and an unfolded BatchNormalization stores its running statistics too.
MACs and binary weights agree exactly.
"""
import math
from typing import Dict, Optional, Sequence, Union

import onnx

from bnn_tasks.analysis.cost import CostReport, ModuleCost

from .op_spec import (COL_SCALE_INPUT, POST_BIAS_INPUT, POST_SCALE_INPUT, QUALIFIED_NAME,
                      ROW_SCALE_INPUT, is_binary_conv)

FLOAT_MAC_OPS = ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')
PARAM_ONLY_OPS = ('BatchNormalization',)
# ops that do MACs but have no rule here: named in the report instead of silently skipped
NO_RULE_OPS = ('Einsum', 'ConvInteger', 'MatMulInteger', 'QLinearConv', 'QLinearMatMul',
               'LSTM', 'GRU', 'RNN', 'Attention')
BINARY_POST_OP_INPUTS = (POST_SCALE_INPUT, POST_BIAS_INPUT, ROW_SCALE_INPUT, COL_SCALE_INPUT)


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _static_dims(value_info) -> Optional[tuple]:
    if not value_info.type.tensor_type.HasField('shape'):
        return None
    dims = value_info.type.tensor_type.shape.dim
    if all(d.HasField('dim_value') for d in dims):
        return tuple(d.dim_value for d in dims)
    return None


def _set_input_shape(model: onnx.ModelProto, shape: Sequence[int]) -> None:
    """Give the (first) 4-D image input spatial size ``shape`` (H, W) if it is dynamic; refuse
    a different fixed size (the graph would have to be exported again)."""
    inits = {t.name for t in model.graph.initializer}
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in inits or len(dims) != 4:
            continue
        h, w = (int(v) for v in shape)
        for dim, value in zip(dims[2:], (h, w)):
            if dim.HasField('dim_value') and dim.dim_value != value:
                raise ValueError(
                    f'the ONNX input {inp.name!r} is fixed at '
                    f'{dims[2].dim_value}x{dims[3].dim_value}, not {h}x{w}: export the model '
                    'again at that shape (tools/deploy.py --shape), or leave out --shape')
            dim.Clear()
            dim.dim_value = value
        if not dims[0].HasField('dim_value'):
            dims[0].Clear()
            dims[0].dim_value = 1
        return


def _pin_batch(model: onnx.ModelProto) -> None:
    """Count one image: a symbolic batch dimension (dynamic-batch exports name it on the input
    and on every annotated tensor) becomes 1 everywhere it appears."""
    inits = {t.name for t in model.graph.initializer}
    names = {inp.type.tensor_type.shape.dim[0].dim_param for inp in model.graph.input
             if inp.name not in inits and len(inp.type.tensor_type.shape.dim) == 4}
    names.discard('')
    if not names:
        return
    graph = model.graph
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.Clear()
                dim.dim_value = 1


def _known_shapes(model: onnx.ModelProto) -> Dict[str, tuple]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # a graph it cannot pass: the annotations the exporter wrote still count
        inferred = model
    shapes: Dict[str, tuple] = {}
    graph = inferred.graph
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output) + list(
            model.graph.value_info):
        dims = _static_dims(vi)
        if dims is not None:
            shapes[vi.name] = dims
    for t in model.graph.initializer:
        shapes[t.name] = tuple(t.dims)
    return shapes


def _row_name(node: onnx.NodeProto, index: int) -> str:
    # TorchScript export names nodes by module scope: '/backbone/layer1/layer1.0/.../Conv'
    name = node.name or (node.output[0] if node.output else f'node_{index}')
    return name.lstrip('/')


FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
               onnx.TensorProto.BFLOAT16)


def _constant_sizes(model: onnx.ModelProto) -> Dict[str, int]:
    """Element counts of the float constants: initializers, Constant nodes, and Identity
    nodes of them (the exporter shares equal constants, e.g. zero biases, behind Identity)."""
    sizes = {t.name: math.prod(t.dims) for t in model.graph.initializer
             if t.data_type in FLOAT_TYPES}
    for node in model.graph.node:
        if node.op_type == 'Constant' and node.attribute and node.attribute[0].name == 'value':
            t = node.attribute[0].t
            if t.data_type in FLOAT_TYPES:
                sizes[node.output[0]] = math.prod(t.dims)
        elif node.op_type == 'Identity' and node.input[0] in sizes:
            sizes[node.output[0]] = sizes[node.input[0]]
    return sizes


def _float_param_count(names: Sequence[str], constants: Dict[str, int]) -> int:
    return sum(constants.get(n, 0) for n in names if n)


def _float_macs(node: onnx.NodeProto, shapes: Dict[str, tuple]) -> Optional[int]:
    """MACs of a standard op, or None if a shape it needs is unknown."""
    op = node.op_type
    out = shapes.get(node.output[0])
    if op == 'Conv':
        weight = shapes.get(node.input[1])
        if out is None or weight is None:
            return None
        return math.prod(out) * math.prod(weight[1:])
    if op == 'ConvTranspose':
        x, weight = shapes.get(node.input[0]), shapes.get(node.input[1])
        if x is None or weight is None:
            return None
        return math.prod(x) * math.prod(weight[1:])
    if op == 'Gemm':
        a = shapes.get(node.input[0])
        if out is None or a is None:
            return None
        k = a[0] if _attr(node, 'transA', 0) else a[1]
        return math.prod(out) * k
    if op == 'MatMul':
        a = shapes.get(node.input[0])
        if out is None or a is None:
            return None
        return math.prod(out) * a[-1]
    raise ValueError(op)


def count_onnx(model: Union[str, onnx.ModelProto], shape: Optional[Sequence[int]] = None
               ) -> CostReport:
    """Cost report of an ONNX model (a path or a loaded ``ModelProto``).

    ``shape`` (H, W) fills in a dynamic image input; a graph exported at a fixed size needs
    none.
    """
    source = model if isinstance(model, str) else (model.graph.name or 'onnx model')
    if isinstance(model, str):
        model = onnx.load(model)
    else:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
    if shape is not None:
        _set_input_shape(model, shape)
    _pin_batch(model)
    shapes = _known_shapes(model)
    inits = {t.name for t in model.graph.initializer}
    constants = _constant_sizes(model)
    rows, uncounted = [], []
    for i, node in enumerate(model.graph.node):
        name = _row_name(node, i)
        if is_binary_conv(node):
            row = ModuleCost(name, QUALIFIED_NAME, calls=1)
            c_in, c_out = int(_attr(node, 'in_channels')), int(_attr(node, 'out_channels'))
            kernel = math.prod(int(k) for k in _attr(node, 'kernel_shape'))
            row.cost.binary_params = c_out * c_in * kernel
            post_ops = [node.input[j] for j in BINARY_POST_OP_INPUTS if j < len(node.input)]
            row.cost.float_params = _float_param_count(post_ops, constants)
            out = shapes.get(node.output[0])
            if out is None:
                uncounted.append(f'{name} ({row.kind}): output shape unknown')
            else:
                row.cost.binary_macs = math.prod(out) * c_in * kernel
        elif node.domain in ('', 'ai.onnx') and node.op_type in FLOAT_MAC_OPS:
            row = ModuleCost(name, node.op_type, calls=1)
            row.cost.float_params = _float_param_count(node.input, constants)
            macs = _float_macs(node, shapes)
            if macs is None:
                uncounted.append(f'{name} ({node.op_type}): shapes unknown (data-dependent?)')
            else:
                row.cost.float_macs = macs
        elif node.domain in ('', 'ai.onnx') and node.op_type in PARAM_ONLY_OPS:
            row = ModuleCost(name, node.op_type, calls=1)
            row.cost.float_params = _float_param_count(node.input[1:], constants)
        else:
            if node.op_type in NO_RULE_OPS:
                uncounted.append(f'{name} ({node.op_type}): no counting rule')
            continue
        if node.input and node.input[0] in shapes:
            row.input_shape = list(shapes[node.input[0]])
        rows.append(row)
    image = next((list(shapes[i.name]) for i in model.graph.input
                  if i.name not in inits and len(shapes.get(i.name, ())) == 4), [])
    report = CostReport(rows=[r for r in rows if not r.cost.is_zero()], input_shape=image,
                        source=str(source), uncounted=uncounted, separator='/')
    report.notes.append(f'ONNX graph, {sum(is_binary_conv(n) for n in model.graph.node)} '
                        f'{QUALIFIED_NAME} nodes')
    return report

