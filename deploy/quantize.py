"""int8 models by ONNX Runtime's own static quantization (QDQ, per-channel weights,
activations calibrated on real images).

* Float models: the comparison a user would make, the float twin quantized the standard way
  and run by plain ONNX Runtime.
* Bit-packed models: their float remainder (stem, shortcuts, neck and head convs, fcs) in int8
  around the binary nodes, as Larq Compute Engine runs int8 layers beside its binary ones. The
  binary convs keep their float inputs: a binary conv binarizes what the float graph gave it,
  not a quantized copy, so its signs do not change. The library's other op
  (``MultiLevelRoiAlign``) reads the int8 features as any RoiAlign would: keeping its inputs
  float would leave the FPN convs that feed it in fp32 (ONNX Runtime fuses a conv into int8
  only when its output is quantized), and they are the largest float convs of a detector.
"""
import contextlib
import logging
import os
from typing import Dict, Iterable, Sequence

import numpy as np
import onnx

from .op_spec import is_binary_conv, is_library_node

# The compute ops. Post-processing (TopK, NMS, RoiAlign, box arithmetic) stays float: quantizing
# the tensors around it would change the boxes, and thereby the work NMS does.
QUANTIZED_OP_TYPES = ('Conv', 'Gemm', 'MatMul')
# Weights in 7 bits (ONNX Runtime's reduce_range). On x86 CPUs without VNNI (AVX2, AVX-512
# without VNNI) ONNX Runtime's U8S8 kernels add pairs of uint8 x int8 products in int16
# (vpmaddubsw), which saturates once |w| nears 127 where activations near 255: measured on an
# AVX2-only AMD EPYC, the Bi-Real-18 Faster R-CNN's float twin (its weights are +-alpha per
# channel, so every one quantizes to +-127) fell from VOC mAP@0.5 0.753 to 0.098 in 8-bit int8.
# An int8 file runs wherever it is copied, so it is written to be free of that on all of them.
REDUCE_RANGE = True


def int8_weight_bits(reduce_range: bool = REDUCE_RANGE) -> int:
    """How many bits the int8 weights of :func:`quantize_int8` use."""
    return 7 if reduce_range else 8


def _reader(feeds: Iterable[Dict[str, np.ndarray]]):
    from onnxruntime.quantization import CalibrationDataReader

    class FeedsReader(CalibrationDataReader):
        """Hands ONNX Runtime's calibrator one input dict at a time."""

        def __init__(self, items):
            self.items = list(items)
            self.rewind()

        def get_next(self):
            return next(self._iter, None)

        def rewind(self):
            self._iter = iter(self.items)

    return FeedsReader(feeds)


@contextlib.contextmanager
def _calibration_sessions_with_library():
    """ONNX Runtime's calibrator creates its own sessions (``onnxruntime.SessionOptions()`` in
    ``onnxruntime.quantization.calibrate``) and offers no way to register a custom-op library:
    while one quantization runs, the options it creates register ours."""
    import onnxruntime

    from .runtime_lite import library_path
    original = onnxruntime.SessionOptions

    def options_with_library():
        options = original()
        options.register_custom_ops_library(library_path())
        return options

    onnxruntime.SessionOptions = options_with_library
    try:
        yield
    finally:
        onnxruntime.SessionOptions = original


def declare_library_output_types(model: onnx.ModelProto) -> None:
    """Give every library node's output a float32 type in ``value_info``: ONNX shape inference
    knows no schema for our domain, and the quantizer leaves a tensor of unknown type (here the
    input of a Conv after a binary block) in float."""
    known = {v.name for v in list(model.graph.value_info) + list(model.graph.output)}
    for node in model.graph.node:
        if is_library_node(node):
            for name in node.output:
                if name not in known:
                    model.graph.value_info.append(
                        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))


def keep_float_inputs_of_binary_convs(model: onnx.ModelProto) -> int:
    """Feed every binary conv the float tensor a QuantizeLinear -> DequantizeLinear pair was
    inserted on (the quantizer rewires all consumers of a tensor it quantizes), then drop the
    pairs nothing reads any more. Returns the number of inputs restored."""
    producers = {out: node for node in model.graph.node for out in node.output}
    restored = 0
    for node in model.graph.node:
        if not is_binary_conv(node):
            continue
        for i, name in enumerate(node.input):
            dq = producers.get(name)
            if dq is None or dq.op_type != 'DequantizeLinear':
                continue
            q = producers.get(dq.input[0])
            if q is not None and q.op_type == 'QuantizeLinear':
                node.input[i] = q.input[0]
                restored += 1
    _remove_unread_qdq(model)
    return restored


def _remove_unread_qdq(model: onnx.ModelProto):
    outputs = {o.name for o in model.graph.output}
    while True:
        read = {name for node in model.graph.node for name in node.input} | outputs
        dead = [n for n in model.graph.node if n.op_type in ('QuantizeLinear', 'DequantizeLinear')
                and not any(o in read for o in n.output)]
        if not dead:
            return
        for node in dead:
            model.graph.node.remove(node)


def quantize_int8(float_path: str, out_path: str, calibration: Sequence[Dict[str, np.ndarray]],
                  op_types: Sequence[str] = QUANTIZED_OP_TYPES,
                  reduce_range: bool = REDUCE_RANGE) -> str:
    """Write ``out_path``: the float ops of ``float_path`` statically quantized to int8,
    calibrated (min/max) on the input dicts ``calibration``. Activations uint8, weights int8 per
    channel (U8S8, the fast path of ONNX Runtime's x86 kernels), 7-bit unless ``reduce_range``
    is False (see ``REDUCE_RANGE``). A bit-packed model keeps its library nodes, the binary
    convs with their float inputs (module docstring)."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    if not calibration:
        raise ValueError('quantize_int8 needs at least one calibration input')
    source = onnx.load(float_path)
    with_library = any(is_library_node(n) for n in source.graph.node)
    if with_library:  # quantize a copy whose library outputs have a known type
        declare_library_output_types(source)
        float_path = out_path + '.typed.onnx'
        onnx.save(source, float_path)
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice per call
    try:
        with (_calibration_sessions_with_library() if with_library else
              contextlib.nullcontext()):
            quantize_static(float_path, out_path, _reader(calibration),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(op_types), reduce_range=reduce_range,
                            calibrate_method=CalibrationMethod.MinMax)
    finally:
        logging.getLogger().setLevel(previous)
        if with_library:
            os.remove(float_path)
    model = onnx.load(out_path)
    if with_library:
        keep_float_inputs_of_binary_convs(model)
    if not model.metadata_props and source.metadata_props:  # the recorded test pipeline
        model.metadata_props.extend(source.metadata_props)
    onnx.save(model, out_path)
    return out_path
