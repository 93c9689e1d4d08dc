"""A toy model and dataset for mmengine runs whose steps take a known wall-clock time (the
time-budget hook's tests), real or on a ``ToyClock``."""
import time
from typing import Callable, Optional, Union

import torch
from mmengine.model import BaseModel
from torch.utils.data import Dataset


class ToyClock:
    """A monotonic clock that moves only when a toy step says so. Patched in for the hook's
    ``time`` module, it makes a test of budget arithmetic exact on a loaded machine (a real
    clock there makes some steps slower than measured, and the run ends by a cut instead)."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SlowToyModel(BaseModel):
    """A linear layer whose forward takes ``step_seconds`` (a number, or a function of the
    forward's index): slept, or advanced on ``clock`` when one is given."""

    def __init__(self, step_seconds: Union[float, Callable[[int], float]],
                 clock: Optional[ToyClock] = None):
        super().__init__()
        self.step_seconds = step_seconds
        self.clock = clock
        self.calls = 0
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, mode='tensor'):
        step = self.step_seconds(self.calls) if callable(self.step_seconds) else self.step_seconds
        self.calls += 1
        if self.clock is None:
            time.sleep(step)
        else:
            self.clock.advance(step)
        loss = self.linear(inputs).pow(2).mean()
        return {'loss': loss} if mode == 'loss' else loss


class ToyData(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        return {'inputs': torch.full((2,), float(i))}
