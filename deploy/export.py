"""Export bnn_tasks models to ONNX: binary convs as bit-packed ``bnn_tasks::BinaryConv2d`` nodes.

Pipeline (see ``docs/deploy.md``):

1. wrap the model (``export_wrappers``): detectors get their post-processing in the graph,
   segmentors their resize + argmax, anchors become constants of the export shape;
2. swap each ``BinaryConv2d`` for an export module (``export_layers``): one custom node with
   int32 bit-packed weights (``mode='binary'``) or the standard-op float twin (``'float'``);
3. ``torch.onnx.export(..., dynamo=False)`` (TorchScript exporter: ``symbolic`` methods emit the
   custom node and ONNX NonMaxSuppression);
4. graph passes (``graph_fusion``): fold BatchNormalization and shortcut Add into the custom
   nodes;
5. ``onnx.checker.check_model``.

The PyTorch output of the wrapped, prepared model on the export inputs is kept as the reference
for :func:`compare_outputs`.
"""
import copy
import os
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from .export_layers import (EXPORT_MODES, UnsupportedLayerError, binary_input_margin,
                            has_binary_convs, prepare_binary_convs)
from .export_wrappers import batch_outputs, build_export_wrapper, model_kind
from .graph_fusion import count_binary_convs, fuse_binary_convs, name_batch_dims
from .op_spec import DOMAIN, IR_VERSION, ONNX_OPSET, OP_VERSION

CLOSE_ATOL = CLOSE_RTOL = 1e-4
BATCH_DIM = 'batch'

__all__ = ['ExportResult', 'export_model', 'export_module', 'compare_outputs', 'file_size',
           'UnsupportedLayerError']


@dataclass
class ExportResult:
    """What one export produced."""
    path: str
    mode: str
    kind: str
    input_names: Tuple[str, ...]
    output_names: Tuple[str, ...]
    inputs: Tuple[Tensor, ...]
    torch_outputs: Tuple[Tensor, ...]
    num_binary_nodes: int = 0
    folded: Dict[str, int] = field(default_factory=dict)
    binary_layers: List[str] = field(default_factory=list)
    # smallest |x| a binary conv binarized on ``inputs`` (see binary_input_margin)
    sign_margin: float = float('inf')

    @property
    def size(self) -> int:
        return file_size(self.path)

    def feeds(self) -> Dict[str, np.ndarray]:
        return {n: t.detach().cpu().numpy() for n, t in zip(self.input_names, self.inputs)}


def file_size(path: str) -> int:
    """Bytes of an ONNX file including external data files next to it, if any."""
    total = os.path.getsize(path)
    model = onnx.load(path, load_external_data=False)
    locations = set()
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == 'location':
                locations.add(entry.value)
    base = os.path.dirname(os.path.abspath(path))
    return total + sum(os.path.getsize(os.path.join(base, loc)) for loc in locations)


def _as_tuple(out) -> Tuple[Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def export_module(module: nn.Module, inputs: Tuple[Tensor, ...], path: str,
                  input_names: Sequence[str], output_names: Sequence[str],
                  mode: str = 'binary', metadata: Optional[Dict[str, str]] = None,
                  dynamic_batch: bool = False,
                  batch_outputs: Optional[Sequence[str]] = None
                  ) -> Tuple[onnx.ModelProto, Dict[str, int]]:
    """Export a prepared module (binary convs already swapped) and run the graph passes;
    ``metadata`` goes into the file's ``metadata_props``; ``dynamic_batch`` makes dim 0 of every
    input and of ``batch_outputs`` (default: every output) the symbolic ``BATCH_DIM``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if batch_outputs is None:
        batch_outputs = output_names
    dynamic_axes = ({name: {0: BATCH_DIM} for name in list(input_names) + list(batch_outputs)}
                    if dynamic_batch else None)
    with warnings.catch_warnings():
        # The legacy-exporter notice and tracer warnings about data-dependent shapes (the
        # post-processing is written for them) are expected here.
        warnings.simplefilter('ignore')
        torch.onnx.export(module, inputs, path, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=list(input_names), output_names=list(output_names),
                          do_constant_folding=True, dynamic_axes=dynamic_axes,
                          custom_opsets=({DOMAIN: OP_VERSION} if mode == 'binary' else None))
    model = onnx.load(path)
    if dynamic_batch:
        name_batch_dims(model, BATCH_DIM)
    folded = fuse_binary_convs(model) if mode == 'binary' else {}
    model.ir_version = min(model.ir_version, IR_VERSION)
    if mode != 'binary':  # the float twin must not declare the custom domain
        keep = [o for o in model.opset_import if o.domain != DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(keep)
    model.producer_name = 'bnn_tasks'
    if metadata:
        onnx.helper.set_model_props(model, dict(metadata))
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model, folded


def export_model(model: nn.Module, path: str, shape: Tuple[int, int], mode: str = 'binary',
                 example_input: Optional[Tensor] = None, seed: int = 0,
                 valid_hw: Optional[Tuple[int, int]] = None,
                 metadata: Optional[Dict[str, str]] = None,
                 dynamic_batch: bool = True) -> ExportResult:
    """Export an mmdet detector, mmseg segmentor or a backbone at input ``shape`` (H, W).

    The model is copied, so the caller's model is unchanged. ``example_input`` [1, 3, H, W] is
    the sample used for tracing and as the verification input (default: seeded N(0, 1));
    ``valid_hw`` is the image size inside it for detectors (default: all of it);
    ``metadata`` is stored in the file (e.g. ``export_record.pipeline_record`` as JSON).
    ``dynamic_batch`` exports dim 0 of the inputs (and of segmentor and backbone outputs) as
    the symbolic batch size; ``False`` fixes it to 1.
    """
    if mode not in EXPORT_MODES:
        raise ValueError(f'mode must be one of {EXPORT_MODES}, got {mode!r}')
    h, w = (int(v) for v in shape)
    model = copy.deepcopy(model).cpu().eval()
    if example_input is None:
        gen = torch.Generator().manual_seed(seed)
        in_ch = _input_channels(model)
        example_input = torch.randn(1, in_ch, h, w, generator=gen)
    if example_input.shape[0] != 1 or tuple(example_input.shape[2:]) != (h, w):
        raise ValueError(f'example_input must be [1, C, {h}, {w}], got '
                         f'{tuple(example_input.shape)}')
    kind = model_kind(model)
    # A bit-packed graph loads the native library anyway, so it also takes the library's RoI
    # op; float exports (and models without binary convs) keep to standard ONNX.
    library_ops = mode == 'binary' and has_binary_convs(model)
    wrapper, input_names, output_names = build_export_wrapper(model, example_input, library_ops)
    inputs: Tuple[Tensor, ...] = (example_input,)
    if 'img_shape' in input_names:
        vh, vw = valid_hw or (h, w)
        inputs = (example_input, torch.tensor([[float(vh), float(vw)]]))
    margin = binary_input_margin(wrapper, inputs)
    layers = prepare_binary_convs(wrapper, inputs, mode)
    wrapper.eval()
    with torch.no_grad():
        torch_outputs = _as_tuple(wrapper(*inputs))
    onnx_model, folded = export_module(wrapper, inputs, path, input_names, output_names, mode,
                                       metadata, dynamic_batch, batch_outputs(kind, output_names))
    return ExportResult(path=path, mode=mode, kind=kind, input_names=tuple(input_names),
                        output_names=tuple(output_names), inputs=inputs,
                        torch_outputs=tuple(t.detach() for t in torch_outputs),
                        num_binary_nodes=count_binary_convs(onnx_model), folded=folded,
                        binary_layers=layers, sign_margin=margin)


def _input_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def compare_outputs(reference: Sequence, actual: Sequence, names: Sequence[str]
                    ) -> Dict[str, dict]:
    """Per output: shapes, max abs difference (over the common leading rows if N differs)."""
    report = {}
    for name, ref, act in zip(names, reference, actual):
        ref = ref.detach().cpu().numpy() if isinstance(ref, Tensor) else np.asarray(ref)
        act = np.asarray(act)
        entry = dict(torch_shape=list(ref.shape), onnx_shape=list(act.shape))
        if ref.ndim == act.ndim and ref.shape[1:] == act.shape[1:]:
            n = min(ref.shape[0], act.shape[0]) if ref.ndim else 0
            r, a = (ref[:n], act[:n]) if ref.ndim else (ref, act)
            if r.size:
                diff = np.abs(r.astype(np.float64) - a.astype(np.float64))
                entry['max_abs_diff'] = float(diff.max())
                entry['mean_abs_diff'] = float(diff.mean())
                # A sign flip at a binary conv input changes a few outputs by O(1); the share of
                # elements that agree tells that apart from a wrong graph.
                entry['fraction_close'] = float(
                    (diff <= CLOSE_ATOL + CLOSE_RTOL * np.abs(r.astype(np.float64))).mean())
            else:
                entry['max_abs_diff'] = 0.0
            entry['compared_rows'] = int(n) if ref.ndim else 1
        else:
            entry['max_abs_diff'] = None
        report[name] = entry
    return report
