"""A toy model and dataset for mmengine runs whose steps take a known wall-clock time (the
time-budget hook's tests)."""
import time

import torch
from mmengine.model import BaseModel
from torch.utils.data import Dataset


class SlowToyModel(BaseModel):
    """A linear layer whose forward sleeps ``step_seconds``."""

    def __init__(self, step_seconds: float):
        super().__init__()
        self.step_seconds = step_seconds
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, mode='tensor'):
        time.sleep(self.step_seconds)
        loss = self.linear(inputs).pow(2).mean()
        return {'loss': loss} if mode == 'loss' else loss


class ToyData(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        return {'inputs': torch.full((2,), float(i))}
