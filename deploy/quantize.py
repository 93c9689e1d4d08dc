"""int8 twins of float ONNX models by ONNX Runtime's own static quantization.

The comparison a user would make: the float model quantized the standard way (QDQ format,
per-channel weights, activations calibrated on real images), run by plain ONNX Runtime.
"""
import logging
from typing import Dict, Iterable, Sequence

import numpy as np

# The compute ops. Post-processing (TopK, NMS, RoiAlign, box arithmetic) stays float: quantizing
# the tensors around it would change the boxes, and thereby the work NMS does.
QUANTIZED_OP_TYPES = ('Conv', 'Gemm', 'MatMul')


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


def quantize_int8(float_path: str, out_path: str, calibration: Sequence[Dict[str, np.ndarray]],
                  op_types: Sequence[str] = QUANTIZED_OP_TYPES) -> str:
    """Write ``out_path``: ``float_path`` statically quantized to int8, calibrated (min/max) on
    the input dicts ``calibration``. Activations uint8, weights int8 per channel (U8S8, the fast
    path of ONNX Runtime's x86 kernels)."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    if not calibration:
        raise ValueError('quantize_int8 needs at least one calibration input')
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice per call
    try:
        quantize_static(float_path, out_path, _reader(calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(op_types),
                        calibrate_method=CalibrationMethod.MinMax)
    finally:
        logging.getLogger().setLevel(previous)
    return out_path
