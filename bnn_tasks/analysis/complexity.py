"""Count FLOPs, BOPs, OPs and binary/float parameters of a PyTorch model.

Forward hooks on the modules that do MACs see the real input and output shapes of one forward
pass (so strides, dilation, padding, shared heads called once per pyramid level and the number
of RoIs are whatever the model really did). Parameters are counted once each, by the module
that owns them. Conventions: ``bnn_tasks.analysis.cost``.

A ``BinaryConv2d`` counts as binary by what its binarizers do, not by its class: its MACs are
BOPs only if both the input and the kernel binarizer output +-1 (a float-stage
``hardtanh``/``identity`` conv is a float conv), and its weights count as 1 bit only if the
kernel binarizer outputs +-1.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

from ..layers.binary_conv import BinaryConv2d
from .cost import Cost, CostReport, ModuleCost

# Modules with parameters that do no MACs under the conventions (normalisation: a scale and a
# shift per element, folded into the neighbouring conv at inference).
NO_MAC_MODULES = (_BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
                  nn.InstanceNorm3d, nn.LocalResponseNorm, nn.PReLU, nn.Embedding)
MAC_MODULES = (_ConvNd, nn.Linear)

_PROBE = torch.tensor([-2.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 2.0])


def _is_pm_one(t: Tensor) -> bool:
    return bool(((t == 1) | (t == -1)).all())


def binary_kinds(conv: BinaryConv2d) -> Tuple[bool, bool]:
    """``(activations binary, weights binary)`` for a ``BinaryConv2d``, by probing its
    binarizers (a config may swap in ``identity``/``hardtanh`` or a user's own)."""
    with torch.no_grad():
        acts = _is_pm_one(conv.input_quantizer(_PROBE.to(conv.weight.dtype)))
        signs, _ = conv.binarized_weight()
        weights = _is_pm_one(signs)
    return acts, weights


def module_macs(module: nn.Module, inputs: Sequence, output) -> int:
    """MACs of one call of a conv/linear module, from its real input/output tensors."""
    if isinstance(module, _ConvTransposeNd):
        # every input element is multiplied into (C_out / groups) x kernel outputs
        x = inputs[0]
        return x.numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, _ConvNd):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() * per_output
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    raise TypeError(f'no MAC rule for {type(module).__name__}')


def _owned_parameter_counts(model: nn.Module, binary_weight_modules: set
                            ) -> Dict[str, Tuple[int, int]]:
    """``{module name: (float params, binary params)}``, each parameter counted once."""
    seen = set()
    counts: Dict[str, Tuple[int, int]] = {}
    for name, module in model.named_modules():
        n_float = n_binary = 0
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if pname == 'weight' and module in binary_weight_modules:
                n_binary += p.numel()
            else:
                n_float += p.numel()
        if n_float or n_binary:
            counts[name] = (n_float, n_binary)
    return counts


def count_complexity(model: nn.Module, run: Callable[[], object],
                     input_shape: Sequence[int] = (), source: str = '') -> CostReport:
    """Run ``run()`` (one forward pass of ``model``) under hooks and return the cost report.

    Args:
        model: the module whose submodules are counted (in eval mode, as deployed).
        run: calls the model once, e.g. ``lambda: model(x)``; a detector's ``_forward``
            with its data samples works too.
        input_shape: recorded in the report.
        source: a label for the report (config path, class name).
    """
    binary_macs_modules, binary_weight_modules = set(), set()
    for m in model.modules():
        if isinstance(m, BinaryConv2d):
            acts, weights = binary_kinds(m)
            if weights:
                binary_weight_modules.add(m)
            if acts and weights:
                binary_macs_modules.add(m)

    names = {m: n for n, m in model.named_modules()}
    rows: Dict[str, ModuleCost] = {}

    def row(name: str, module: nn.Module) -> ModuleCost:
        if name not in rows:
            rows[name] = ModuleCost(name or '(model)', type(module).__name__)
        return rows[name]

    def hook(module, inputs, output):
        entry = row(names[module], module)
        macs = module_macs(module, inputs, output)
        if module in binary_macs_modules:
            entry.cost.binary_macs += macs
        else:
            entry.cost.float_macs += macs
        entry.calls += 1
        if inputs and isinstance(inputs[0], Tensor):
            entry.input_shape = list(inputs[0].shape)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, MAC_MODULES)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    for name, (n_float, n_binary) in _owned_parameter_counts(
            model, binary_weight_modules).items():
        entry = row(name, model.get_submodule(name) if name else model)
        entry.cost.float_params += n_float
        entry.cost.binary_params += n_binary

    order = {n: i for i, n in enumerate(names.values())}
    ordered = sorted(rows.values(), key=lambda r: order.get(
        '' if r.name == '(model)' else r.name, len(order)))
    report = CostReport(rows=[r for r in ordered if not r.cost.is_zero()],
                        input_shape=list(input_shape), source=source)
    report.uncounted = _uncounted_modules(model)
    unreached = [n for n, m in model.named_modules()
                 if isinstance(m, MAC_MODULES) and (n not in rows or rows[n].calls == 0)]
    if unreached:
        report.notes.append(f'{len(unreached)} conv/linear modules were not called by the '
                            f'forward pass (their parameters are counted, no MACs): '
                            f'{", ".join(unreached[:8])}' + (' ...' if len(unreached) > 8 else ''))
    return report


def _uncounted_modules(model: nn.Module) -> List[str]:
    """Modules holding a weight of their own that no rule covers (their MACs are missing)."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, MAC_MODULES + NO_MAC_MODULES):
            continue
        own = dict(m.named_parameters(recurse=False))
        weights = [k for k, p in own.items() if k == 'weight' and p.dim() >= 2]
        if weights:
            out.append(f'{name} ({type(m).__name__})')
    return out


def count_module(module: nn.Module, input_shape: Sequence[int],
                 source: Optional[str] = None) -> CostReport:
    """Cost of ``module(x)`` for one zero-mean random input of ``input_shape`` (N, C, H, W)."""
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    return count_complexity(module, lambda: module(x), input_shape,
                            source or type(module).__name__)
