"""Swap the binary convs of a model for export-time modules.

``prepare_binary_convs(model, example_inputs, mode)`` runs the model once to learn the input
size every ``BinaryConv2d`` sees, checks the layer is exportable, and replaces it (in place) by

* ``'binary'``: :class:`PackedBinaryConv2d`, which exports as one ``bnn_tasks::BinaryConv2d``
  node with bit-packed int32 weights and small float post-op inputs;
* ``'float'``: :class:`FloatTwinConv2d`, the same function with standard ONNX ops (sign as
  ``Where``, a float ``Conv`` of the +-1 weights): the full-precision twin used to compare size
  and speed.

Both compute exactly what the original module computes in eval mode, so the PyTorch output of
the prepared model is the reference for the exported graph.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bnn_tasks.binarizers import sign
from bnn_tasks.layers import BinaryConv2d

from .onnx_ops import BinaryConv2dFunction, StaticConvArgs, apply_output_transform
from .op_spec import WEIGHT_LAYOUT, conv_output_size
from .packing import pack_weights

EXPORT_MODES = ('binary', 'float')


class UnsupportedLayerError(ValueError):
    """A layer the bit-packed kernel cannot run (the message names the layer)."""


def _pack(sign_weight: Tensor) -> Tensor:
    """+-1 weights as int32 words in the op's layout (``deploy/packing.py``)."""
    return torch.from_numpy(pack_weights(sign_weight.detach().cpu()))


def check_exportable(name: str, conv: BinaryConv2d):
    """Raise :class:`UnsupportedLayerError` naming ``name`` if the kernel cannot run ``conv``."""
    where = f'binary conv {name!r} ({type(conv).__name__})'
    if conv.groups != 1:
        raise UnsupportedLayerError(
            f'{where} has groups={conv.groups}; the bnn_tasks::BinaryConv2d kernel supports '
            'groups=1 only (keep this layer full precision, or use a dense conv)')
    if conv.padding_mode != 'zeros':
        raise UnsupportedLayerError(f'{where} uses padding_mode={conv.padding_mode!r}; only zero '
                                    'padding is supported')
    if isinstance(conv.padding, str):
        raise UnsupportedLayerError(f'{where} uses padding={conv.padding!r}; give explicit '
                                    'integer padding to export it')
    # The binarizers declare what they compute (bnn_tasks.binarizers); the kernel computes sign.
    if not getattr(conv.input_quantizer, 'is_sign', False):
        raise UnsupportedLayerError(
            f'{where}: its input binarizer {type(conv.input_quantizer).__name__} is not a sign '
            'function (sign(0)=+1); the kernel binarizes its input with sign')
    if not getattr(conv.kernel_quantizer, 'is_sign', False):
        raise UnsupportedLayerError(
            f'{where}: its kernel binarizer {type(conv.kernel_quantizer).__name__} does not '
            'produce +-1 signs of the weights')


def _static_shape(x: Tensor) -> tuple:
    """``x.shape`` as ints (while tracing, sizes are tensors; these convs have static sizes)."""
    return tuple(int(v) for v in x.shape)


class _ExportConvBase(nn.Module):
    """Holds the folded per-channel transform of one binary conv at its input size.

    ``in_shapes`` holds the one [N, C, H, W] the conv sees at the export shape (a conv called
    once per FPN level gets one export module per call, see :class:`PerCallBinaryConv`).
    ``image_batch`` is the traced image batch; a conv that sees another row count (one row per
    RoI) gets a data-dependent dim 0 in the graph, as do the dims a layer lists in its
    ``data_dependent_dims`` attribute (``BinaryFCBBoxHead``: one pixel per RoI in dim 2, and a
    dim 0 of 1 that is not the image batch). Only a dim 0 with a size becomes the graph's
    symbolic batch in a dynamic-batch export (``graph_fusion.name_batch_dims``).
    """

    def __init__(self, name: str, conv: BinaryConv2d, in_shapes: Sequence[Sequence[int]],
                 image_batch: int = 1):
        super().__init__()
        check_exportable(name, conv)
        self.layer_name = name
        self.in_shapes = {tuple(int(v) for v in shape[1:]) for shape in in_shapes}
        for c, _, _ in self.in_shapes:
            if c != conv.in_channels:
                raise UnsupportedLayerError(f'binary conv {name!r} got {c} input channels, '
                                            f'expected {conv.in_channels}')
        # dims whose size follows the data: the rows of a conv that sees another row count
        # than the image batch, and what the layer declares (a pixel per RoI)
        self.data_dependent_dims = set(getattr(conv, 'data_dependent_dims', ()))
        if any(int(shape[0]) != image_batch for shape in in_shapes):
            self.data_dependent_dims.add(0)
        self.kernel_shape = tuple(conv.kernel_size)
        self.out_channels = conv.out_channels
        self.conv_args = (tuple(conv.stride), tuple(conv.padding), tuple(conv.dilation))
        kh, kw = self.kernel_shape
        ho, wo = self._output_hw(next(iter(self.in_shapes)))
        with torch.no_grad():
            signs, _ = conv.binarized_weight()
            post_scale, row_scale, col_scale = conv.output_factors(ho, wo)
            post_bias = (torch.zeros(conv.out_channels) if conv.bias is None else conv.bias)

        def constant(t):
            return None if t is None else t.detach().float().clone()

        signs = constant(signs)
        self.register_buffer('post_scale', constant(post_scale))
        self.register_buffer('post_bias', constant(post_bias))
        self.register_buffer('row_scale', constant(row_scale))
        self.register_buffer('col_scale', constant(col_scale))
        self.geometry = dict(in_channels=conv.in_channels, out_channels=conv.out_channels,
                             kernel_shape=(kh, kw), strides=tuple(conv.stride),
                             pads=(conv.padding[0], conv.padding[1],
                                   conv.padding[0], conv.padding[1]),
                             dilations=tuple(conv.dilation))
        self._init_weights(signs)

    def _output_hw(self, in_shape) -> Tuple[int, int]:
        (sh, sw), (ph, pw), (dh, dw) = self.conv_args
        kh, kw = self.kernel_shape
        return (conv_output_size(in_shape[1], kh, sh, ph, ph, dh),
                conv_output_size(in_shape[2], kw, sw, pw, pw, dw))

    def output_shape(self, x: Tensor) -> tuple:
        """The [N, C, H, W] annotation of this call's output; None where the size follows
        the data (RoIs)."""
        shape = _static_shape(x)
        out = (shape[0], self.out_channels) + self._output_hw(shape[1:])
        return tuple(None if d in self.data_dependent_dims else v for d, v in enumerate(out))

    def _init_weights(self, signs: Tensor):
        raise NotImplementedError

    def _check_input(self, x: Tensor):
        got = _static_shape(x)[1:]
        if got not in self.in_shapes:
            raise ValueError(f'binary conv {self.layer_name!r} was prepared for inputs '
                             f'{sorted(self.in_shapes)} but got {got}; prepare the model again '
                             'at the export shape')

    def _post(self, y: Tensor) -> Tensor:
        return apply_output_transform(y, self.post_scale, self.post_bias, self.row_scale,
                                      self.col_scale)


class PackedBinaryConv2d(_ExportConvBase):
    """Exports as one ``bnn_tasks::BinaryConv2d`` node with bit-packed weights."""

    def _init_weights(self, signs: Tensor):
        self.register_buffer('weight_packed', _pack(signs))
        self.geometry['weight_layout'] = WEIGHT_LAYOUT
        # The float signs only serve PyTorch's reference forward; they must not be a buffer
        # (the tracer would turn them into a graph input the custom node does not consume).
        self._signs = signs

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        spatial = () if self.row_scale is None else (self.row_scale, self.col_scale)
        # geometry per call: a conv shared across FPN levels has one output size per level
        static = StaticConvArgs(self._signs, dict(self.geometry, output_shape=self.output_shape(x)))
        return BinaryConv2dFunction.apply(x, self.weight_packed, self.post_scale, self.post_bias,
                                          static, *spatial)


class FloatTwinConv2d(_ExportConvBase):
    """The same function with standard ops: ``Conv(Where(x >= 0, 1, -1), signs)``."""

    def _init_weights(self, signs: Tensor):
        self.register_buffer('sign_weight', signs)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        g = self.geometry
        y = F.conv2d(sign(x), self.sign_weight, None, g['strides'], g['pads'][:2],
                     g['dilations'])
        return self._post(y)


class PerCallBinaryConv(nn.Module):
    """A binary conv called several times per forward (shared across FPN levels: the RPN
    conv, RetinaNet's tower): one export module per call, each its own graph node with its own
    (small, packed) weights. The calls come in the same order every forward (one per level),
    so a counter picks the module.

    The TorchScript tracer fails (``unordered_map::at``) when one autograd Function is applied
    twice to the same buffers, so the calls cannot share one module's buffers.
    """

    def __init__(self, name: str, conv: BinaryConv2d, call_shapes, image_batch: int, cls):
        super().__init__()
        self.layer_name = name
        self.per_call = nn.ModuleList(cls(name, conv, [shape], image_batch)
                                      for shape in call_shapes)
        self._next_call = 0

    def forward(self, x: Tensor) -> Tensor:
        module = self.per_call[self._next_call]
        self._next_call = (self._next_call + 1) % len(self.per_call)
        return module(x)  # checks the size: a forward at another export shape fails clearly


def _record_input_shapes(model: nn.Module, example_inputs: Tuple
                         ) -> Dict[str, List[torch.Size]]:
    """The input shape of every call of each ``BinaryConv2d`` in one forward, in call order."""
    shapes: Dict[str, List[torch.Size]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, BinaryConv2d):
            def hook(mod, args, name=name):
                shapes.setdefault(name, []).append(args[0].shape)
            handles.append(m.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(*example_inputs)
    finally:
        for h in handles:
            h.remove()
    return shapes


def binary_input_margin(model: nn.Module, example_inputs: Tuple) -> float:
    """Smallest non-zero ``|x|`` any binary conv of ``model`` binarizes on these inputs.

    Values closer to 0 than float rounding (~1e-6 for O(1) activations) may take the other sign
    in ONNX Runtime than in PyTorch; a margin well above that rules such flips out, so any
    remaining difference is a real one. Exact zeros are left out: they come from ReLU/max-pool
    (the stem) and are 0, hence +1, on both sides. Returns inf if there is nothing to measure.
    """
    smallest = [float('inf')]

    def hook(mod, args):
        values = args[0].detach().abs()
        values = values[values > 0]
        if values.numel():
            smallest[0] = min(smallest[0], float(values.min()))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()
               if isinstance(m, BinaryConv2d)]
    try:
        with torch.no_grad():
            model(*example_inputs)
    finally:
        for h in handles:
            h.remove()
    return smallest[0]


def has_binary_convs(model: nn.Module) -> bool:
    """Whether ``model`` has a ``BinaryConv2d`` (its bit-packed export needs the library)."""
    return any(isinstance(m, BinaryConv2d) for m in model.modules())


def prepare_binary_convs(model: nn.Module, example_inputs: Tuple, mode: str = 'binary'
                         ) -> List[str]:
    """Replace every ``BinaryConv2d`` of ``model`` (in eval mode) by its export module.

    Args:
        model: module to modify in place; ``model(*example_inputs)`` must run.
        example_inputs: inputs at the export shape.
        mode: ``'binary'`` (custom op, packed weights) or ``'float'`` (standard ops).

    Returns:
        Names of the replaced layers. Layers the forward pass does not reach are an error (their
        export size is unknown).
    """
    if mode not in EXPORT_MODES:
        raise ValueError(f'mode must be one of {EXPORT_MODES}, got {mode!r}')
    model.eval()
    binary = [(n, m) for n, m in model.named_modules() if isinstance(m, BinaryConv2d)]
    for name, conv in binary:  # fail on unsupported layers before running anything
        check_exportable(name, conv)
    shapes = _record_input_shapes(model, example_inputs)
    cls = PackedBinaryConv2d if mode == 'binary' else FloatTwinConv2d
    for name, conv in binary:
        if name not in shapes:
            raise UnsupportedLayerError(f'binary conv {name!r} is not reached by the forward '
                                        'pass, so its export size is unknown')
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        image_batch = int(example_inputs[0].shape[0])
        calls = shapes[name]
        export_conv = (cls(name, conv, calls, image_batch) if len(calls) == 1 else
                       PerCallBinaryConv(name, conv, calls, image_batch, cls))
        setattr(parent, child, export_conv)
    return [name for name, _ in binary]
