"""ONNX graph passes that fold neighbours into ``bnn_tasks::BinaryConv2d`` nodes.

* :func:`fold_batchnorm`: a ``BatchNormalization`` (inference form) that is the only consumer
  of a binary conv's output becomes part of the conv's per-channel transform:
  ``BN(y) = y * k + (beta - mean * k)`` with ``k = gamma / sqrt(var + eps)``, so
  ``post_scale' = post_scale * k`` and ``post_bias' = post_bias * k + beta - mean * k``
  (row/col scales multiply, so they are untouched).
* :func:`fold_residual_add`: an ``Add`` that is the only consumer of a binary conv's output and
  whose other operand has exactly the output's shape (no broadcasting) becomes the conv's
  ``residual`` input (Bi-Real / XNOR-Net++ shortcuts). The shapes are equal when shape
  inference says so, or when the other operand is the conv's own input (possibly through the
  ``BatchNormalization`` in front of it, as in ``BinaryConvUnit``) and the conv keeps the shape
  (stride 1, "same" padding, as many outputs as inputs): the identity shortcut of a neck or head
  unit, whose symbolic batch dims shape inference cannot relate after a Resize.

Both passes only rewrite when it is safe: the conv output feeds nothing else and is not a graph
output, and the parameters are constant initializers. The fused node takes the place of the node
it absorbs, so the node list stays topologically sorted.
"""
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
import onnx
from onnx import numpy_helper

from .op_spec import (POST_BIAS_INPUT, POST_SCALE_INPUT, RESIDUAL_INPUT, has_input,
                      is_binary_conv)


class _Graph:
    """Index of a graph's producers, consumers, initializers and known shapes."""

    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        self.inits = {t.name: t for t in self.graph.initializer}
        self.outputs = {o.name for o in self.graph.output}
        # Work on detached copies and write the list back once (see commit): protobuf repeated
        # fields copy on insertion, so references into them go stale while the list changes.
        self.nodes: List[onnx.NodeProto] = []
        for node in self.graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            self.nodes.append(copy)
        self.consumers: Dict[str, List[onnx.NodeProto]] = defaultdict(list)
        self.producer: Dict[str, onnx.NodeProto] = {}
        for node in self.nodes:
            for name in node.input:
                if name:
                    self.consumers[name].append(node)
            for name in node.output:
                self.producer[name] = node
        self.shapes: Dict[str, Optional[tuple]] = {}
        # The exporter annotates only the custom nodes' outputs; ONNX shape inference fills in
        # the standard ops (it cannot see through the custom op, hence the annotations).
        try:
            inferred = onnx.shape_inference.infer_shapes(model).graph.value_info
        except Exception:  # an unknown op it cannot pass: fall back to the annotations
            inferred = []
        for vi in list(inferred) + list(self.graph.value_info) + list(self.graph.input) + list(
                self.graph.output):
            shape = _known_shape(vi)
            if shape is not None:
                self.shapes[vi.name] = shape
        for t in self.graph.initializer:
            self.shapes[t.name] = tuple(t.dims)

    def sole_consumer(self, name: str) -> Optional[onnx.NodeProto]:
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs:
            return None
        return users[0]

    def constant(self, name: str) -> Optional[np.ndarray]:
        """Value of an initializer, a Constant node, or an Identity of one (the exporter
        deduplicates equal parameters, e.g. fresh BN statistics, behind Identity nodes)."""
        for _ in range(16):
            if name in self.inits:
                return numpy_helper.to_array(self.inits[name])
            node = self.producer.get(name)
            if node is None:
                return None
            if node.op_type == 'Constant' and node.attribute:
                return numpy_helper.to_array(node.attribute[0].t) \
                    if node.attribute[0].name == 'value' else None
            if node.op_type != 'Identity':
                return None
            name = node.input[0]
        return None

    def add_initializer(self, base: str, value: np.ndarray) -> str:
        name, i = base, 0
        while name in self.inits:
            i += 1
            name = f'{base}_{i}'
        t = numpy_helper.from_array(np.ascontiguousarray(value), name)
        self.graph.initializer.append(t)
        self.inits[name] = t
        return name

    def replace_node(self, absorbed: onnx.NodeProto, fused: onnx.NodeProto):
        """Move ``fused`` to where ``absorbed`` was and drop ``absorbed``."""
        self.nodes = [n for n in self.nodes if n is not fused]
        index = next(i for i, n in enumerate(self.nodes) if n is absorbed)
        self.nodes[index] = fused

    def commit(self):
        del self.graph.node[:]
        self.graph.node.extend(self.nodes)
        # Keep every custom node's output shape annotated (later passes and shape inference
        # downstream of the custom op rely on it).
        annotated = {vi.name for vi in self.graph.value_info}
        for node in self.nodes:
            name = node.output[0]
            if is_binary_conv(node) and name not in annotated and name in self.shapes:
                self.graph.value_info.append(onnx.helper.make_tensor_value_info(
                    name, onnx.TensorProto.FLOAT, list(self.shapes[name])))


def _known_shape(value_info: onnx.ValueInfoProto) -> Optional[tuple]:
    """Dims as sizes or symbolic names (a dynamic batch), ``None`` if any dim is unknown."""
    dims = value_info.type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField('dim_value') else (d.dim_param or None) for d in dims)
    return shape if shape and None not in shape else None


def name_batch_dims(model: onnx.ModelProto, name: str):
    """Give dim 0 of every binary conv output the graph's symbolic batch ``name``.

    The exporter annotates the custom nodes' outputs with the traced batch size; with a dynamic
    batch they take the graph input's symbol instead, so shape inference carries it on and the
    passes can match a conv output with its shortcut (both ``(name, C, H, W)``).
    """
    outputs = {n.output[0] for n in model.graph.node if is_binary_conv(n)}
    for vi in model.graph.value_info:
        dims = vi.type.tensor_type.shape.dim
        # a dim 0 without a size follows the data (a conv over RoIs), not the batch
        if vi.name in outputs and dims and dims[0].HasField('dim_value'):
            dims[0].Clear()
            dims[0].dim_param = name


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _drop_dead_nodes_and_initializers(model: onnx.ModelProto):
    """Remove Identity/Constant nodes and initializers nothing consumes any more."""
    graph = model.graph
    while True:
        used = {name for node in graph.node for name in node.input}
        used |= {o.name for o in graph.output}
        live = [n for n in graph.node
                if n.op_type not in ('Identity', 'Constant') or any(o in used for o in n.output)]
        if len(live) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(live)
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def fold_batchnorm(model: onnx.ModelProto) -> int:
    """Fold inference BatchNormalization into the preceding binary conv; returns the count."""
    g = _Graph(model)
    folded = 0
    for node in list(g.nodes):
        if not is_binary_conv(node):
            continue
        bn = g.sole_consumer(node.output[0])
        if bn is None or bn.op_type != 'BatchNormalization' or bn.domain not in ('', 'ai.onnx'):
            continue
        if len(bn.output) != 1 or _attr(bn, 'training_mode', 0):
            continue
        params = [g.constant(n) for n in bn.input[1:5]]
        post_scale = g.constant(node.input[POST_SCALE_INPUT])
        post_bias = g.constant(node.input[POST_BIAS_INPUT])
        if any(p is None for p in params) or post_scale is None or post_bias is None:
            continue
        gamma, beta, mean, var = (p.astype(np.float64) for p in params)
        k = gamma / np.sqrt(var + float(_attr(bn, 'epsilon', 1e-5)))
        new_scale = (post_scale.astype(np.float64) * k).astype(np.float32)
        new_bias = (post_bias.astype(np.float64) * k + beta - mean * k).astype(np.float32)
        node.input[POST_SCALE_INPUT] = g.add_initializer(node.input[POST_SCALE_INPUT] + '_bn',
                                                         new_scale)
        node.input[POST_BIAS_INPUT] = g.add_initializer(node.input[POST_BIAS_INPUT] + '_bn',
                                                        new_bias)
        if node.output[0] in g.shapes:
            g.shapes[bn.output[0]] = g.shapes[node.output[0]]
        node.output[0] = bn.output[0]
        g.replace_node(bn, node)
        folded += 1
    g.commit()
    _drop_dead_nodes_and_initializers(model)
    return folded


def _keeps_shape(node: onnx.NodeProto) -> bool:
    """Whether a binary conv's output has its input's shape (stride 1, "same" padding, C_out ==
    C_in)."""
    kernel = _attr(node, 'kernel_shape', [])
    dilations = _attr(node, 'dilations', [1] * len(kernel))
    pads = _attr(node, 'pads', [0] * 2 * len(kernel))
    rank = len(kernel)
    return (_attr(node, 'in_channels', -1) == _attr(node, 'out_channels', -2)
            and all(s == 1 for s in _attr(node, 'strides', [1] * rank))
            and all(pads[i] + pads[i + rank] == dilations[i] * (kernel[i] - 1)
                    for i in range(rank)))


def _same_shape_inputs(g: _Graph, node: onnx.NodeProto) -> set:
    """The conv's input, and the input of a BatchNormalization that produces it."""
    x = node.input[0]
    producer = g.producer.get(x)
    if producer is not None and producer.op_type == 'BatchNormalization':
        return {x, producer.input[0]}
    return {x}


def fold_residual_add(model: onnx.ModelProto) -> int:
    """Make a following same-shape Add the binary conv's ``residual`` input; returns the count."""
    g = _Graph(model)
    folded = 0
    for node in list(g.nodes):
        if not is_binary_conv(node):
            continue
        if has_input(node, RESIDUAL_INPUT):
            continue
        add = g.sole_consumer(node.output[0])
        if add is None or add.op_type != 'Add' or add.domain not in ('', 'ai.onnx'):
            continue
        if len(add.input) != 2 or add.input[0] == add.input[1]:
            continue
        other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
        out_shape = g.shapes.get(node.output[0])
        if out_shape is None:
            continue
        if g.shapes.get(other) != out_shape and not (
                _keeps_shape(node) and other in _same_shape_inputs(g, node)):
            continue  # unknown or broadcasting shapes: the kernel adds element-wise only
        inputs = list(node.input) + [''] * (RESIDUAL_INPUT - len(node.input))
        inputs = inputs[:RESIDUAL_INPUT] + [other]
        del node.input[:]
        node.input.extend(inputs)
        node.output[0] = add.output[0]
        g.shapes[add.output[0]] = out_shape
        g.replace_node(add, node)
        folded += 1
    g.commit()
    return folded


def fuse_binary_convs(model: onnx.ModelProto) -> Dict[str, int]:
    """Run every pass; returns how many nodes each one folded."""
    return {'batchnorm': fold_batchnorm(model), 'residual_add': fold_residual_add(model)}


def count_binary_convs(model: onnx.ModelProto) -> int:
    return sum(1 for n in model.graph.node if is_binary_conv(n))
