"""What each binary layer's activation binarizer is fed, on real images.

Three numbers per layer (its ``input_quantizer``), pooled over every call and element:

* ``gradient_free``: the share of inputs beyond the binarizer's ``gradient_bound`` (|x| > 1 for
  sign's clipped STE, ApproxSign and the float stage's hardtanh). Their backward pass is 0
  there, so that share of the layer's input trains neither this layer's input path nor
  anything before it. A real-valued shortcut around every conv (Bi-Real) adds up block outputs,
  so the spread of its input, and with it this share, grows with depth.
* ``std``: the spread of the input (how far past the bound a typical input lies).
* ``positive``: the share that binarizes to +1 (sign(0) = +1); far from 0.5, the binary
  activations carry little information (IR-Net's argument for balanced signs).
"""
import math
from dataclasses import asdict, dataclass
from typing import Callable, List

import torch
from torch import nn

from .markdown import markdown_table


@dataclass
class BinaryInputStats:
    layer: str          # the binary layer (the binarizer's parent module)
    binarizer: str      # its input binarizer's class
    shape: tuple        # input shape of its first call
    elements: int       # inputs counted (all calls)
    gradient_free: float
    std: float
    positive: float

    def as_dict(self) -> dict:
        return asdict(self)


class _Tally:
    def __init__(self, bound: float):
        self.bound, self.shape = bound, None
        self.n = self.beyond = self.positive = 0
        self.total = self.squares = 0.0

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().double()
        if self.shape is None:
            self.shape = tuple(x.shape)
        self.n += x.numel()
        self.beyond += int((x.abs() > self.bound).sum())
        self.positive += int((x >= 0).sum())
        self.total += float(x.sum())
        self.squares += float((x * x).sum())

    def stats(self, layer: str, binarizer: str) -> BinaryInputStats:
        n = max(self.n, 1)
        mean = self.total / n
        var = max(self.squares / n - mean * mean, 0.0)
        return BinaryInputStats(layer, binarizer, self.shape, self.n, self.beyond / n,
                                math.sqrt(var), self.positive / n)


def input_binarizers(model: nn.Module) -> List[tuple]:
    """``(layer name, binarizer)`` of every binary layer, in module order."""
    found = []
    for name, module in model.named_modules():
        quantizer = getattr(module, 'input_quantizer', None)
        if isinstance(quantizer, nn.Module) and getattr(quantizer, 'kind', None) == 'input':
            found.append((name, quantizer))
    return found


def binary_input_stats(model: nn.Module, run: Callable[[], object]) -> List[BinaryInputStats]:
    """Call ``run()`` (forward passes of ``model``) and return each binary layer's
    :class:`BinaryInputStats`, in module order; layers ``run`` never reached are left out."""
    layers = input_binarizers(model)
    if not layers:
        raise ValueError(f'{type(model).__name__} has no binary layer (no module with an '
                         'input binarizer)')
    tallies, handles = [], []
    for name, quantizer in layers:
        if not hasattr(quantizer, 'gradient_bound'):
            raise ValueError(f'{name}: input binarizer {type(quantizer).__name__} declares no '
                             'gradient_bound (see bnn_tasks/binarizers.py)')
        tally = _Tally(float(quantizer.gradient_bound))
        tallies.append(tally)
        handles.append(quantizer.register_forward_pre_hook(
            lambda module, args, tally=tally: tally.add(args[0])))
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return [tally.stats(name, type(quantizer).__name__)
            for (name, quantizer), tally in zip(layers, tallies) if tally.n]


def format_stats(stats: List[BinaryInputStats]) -> str:
    """A markdown table, one row per binary layer."""
    return markdown_table(
        ['layer', 'binarizer', 'input shape', 'gradient-free %', 'std', '+1 %'],
        [(s.layer, s.binarizer, 'x'.join(map(str, s.shape)), f'{100 * s.gradient_free:.1f}',
          f'{s.std:.2f}', f'{100 * s.positive:.1f}') for s in stats],
        align=['---', '---', '---', '---:', '---:', '---:'])
