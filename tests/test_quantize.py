"""int8 static quantization (``deploy/quantize.py``) of a bit-packed model: its float remainder
goes int8, its binary convs stay and keep their float inputs, and the model still computes
the same features up to int8 rounding (the RoI op of a detector reads int8 features:
tests/test_runtime_eval.py)."""
import numpy as np
import onnx
from onnx import numpy_helper

import bnn_tasks  # noqa: F401  (registers the backbones)
from bnn_tasks.deploy.export import export_model
from bnn_tasks.deploy.op_spec import is_library_node
from bnn_tasks.deploy.quantize import quantize_int8
from bnn_tasks.deploy.runtime import create_session
from mmdet.registry import MODELS
from test_export_backbones import randomize_for_export

SIZE = 64


def test_int8_bit_packed_model_keeps_binary_nodes_and_their_float_inputs(tmp_path):
    model = randomize_for_export(MODELS.build(dict(type='BiRealResNet', depth=18)).eval())
    path = str(tmp_path / 'bireal.onnx')
    export_model(model, path, (SIZE, SIZE), 'binary')
    rng = np.random.default_rng(0)
    calibration = [{'input': rng.standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)}
                   for _ in range(4)]
    int8_path = quantize_int8(path, str(tmp_path / 'bireal_int8.onnx'), calibration)

    source, quantized = onnx.load(path), onnx.load(int8_path)
    binary = [n for n in quantized.graph.node if is_library_node(n)]
    assert len(binary) == sum(is_library_node(n) for n in source.graph.node) > 0
    producers = {out: n.op_type for n in quantized.graph.node for out in n.output}
    # every binary node reads a float tensor, none a dequantized copy of one
    assert all(producers.get(name) != 'DequantizeLinear' for n in binary for name in n.input)
    # the float convs (stem, 1x1 shortcuts) now compute from int8 tensors
    convs = [n for n in quantized.graph.node if n.op_type == 'Conv']
    assert convs and all(producers.get(n.input[0]) == 'DequantizeLinear' and
                         producers.get(n.input[1]) == 'DequantizeLinear' for n in convs)
    # weights in 7 bits (|q| <= 64): ONNX Runtime's int8 sums cannot saturate without VNNI
    initializers = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    weights = [initializers[n.input[0]] for n in quantized.graph.node
               if n.op_type == 'DequantizeLinear' and n.input[0] in initializers
               and initializers[n.input[0]].dtype == np.int8]
    assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) == 64
    # nothing dead left behind
    read = {name for n in quantized.graph.node for name in n.input}
    read |= {o.name for o in quantized.graph.output}
    assert all(any(o in read for o in n.output) for n in quantized.graph.node)

    # int8 rounding flips a few signs ahead of each binary conv, and with random weights the
    # flips compound stage by stage (measured 0.98 / 0.93-0.96 / 0.92-0.95 / 0.90-0.94 over
    # seeds and CPUs); a miswired node would give ~0 from its stage on
    feed = {'input': rng.standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)}
    outputs = zip(create_session(path).run(None, feed), create_session(int8_path).run(None, feed))
    for stage, (ref, act) in enumerate(outputs):
        assert ref.shape == act.shape
        assert np.corrcoef(ref.ravel(), act.ravel())[0, 1] > (0.95 if stage == 0 else 0.75)
