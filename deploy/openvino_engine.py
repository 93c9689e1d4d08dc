"""Float ONNX models in OpenVINO's CPU plugin, shaped like an ONNX Runtime session.

OpenVINO is an optional extra (``pip install -e .[bench]``): the engine a user could run the
float model with instead. It cannot run ``bnn_tasks::BinaryConv2d``; only float graphs go here.
"""
from typing import Optional


def openvino_version() -> Optional[str]:
    """The installed OpenVINO version, or ``None`` when it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__ if hasattr(openvino, '__version__') else openvino.get_version()


class OpenVinoSession:
    """``OpenVinoSession(path, threads, precision)``.run(None, feeds) -> list of outputs.

    ``precision=None`` keeps the plugin's default (bf16 on CPUs with AMX/AVX-512 BF16, else
    f32); ``'f32'`` forces full precision through ``INFERENCE_PRECISION_HINT``. One stream and
    the latency hint: one image at a time, as the ONNX Runtime sessions are timed.
    """

    def __init__(self, path: str, threads: int = 1, precision: Optional[str] = None):
        import openvino as ov
        config = {'INFERENCE_NUM_THREADS': int(threads), 'NUM_STREAMS': 1,
                  'PERFORMANCE_HINT': 'LATENCY'}
        if precision:
            config['INFERENCE_PRECISION_HINT'] = precision
        self.compiled = ov.Core().compile_model(path, 'CPU', config)
        self.request = self.compiled.create_infer_request()
        hint = self.compiled.get_property('INFERENCE_PRECISION_HINT')  # what it picked: bf16...
        self.precision = hint.get_type_name() if hasattr(hint, 'get_type_name') else str(hint)

    def run(self, _output_names, feeds):
        result = self.request.infer(feeds)
        return [result[out] for out in self.compiled.outputs]
