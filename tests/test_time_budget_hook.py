"""TrainTimeBudgetHook stops a run and leaves a resumable checkpoint."""
import os.path as osp
import time

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import bnn_tasks  # noqa: F401  (registers the hook)


class _SlowToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, mode='tensor'):
        time.sleep(0.05)
        loss = self.linear(inputs).pow(2).mean()
        return {'loss': loss} if mode == 'loss' else loss


class _ToyData(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        return {'inputs': torch.full((2,), float(i))}


def _runner(work_dir, budget_minutes, max_iters=40):
    return Runner(
        model=_SlowToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=_ToyData(), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=2, num_workers=0,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-3)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1000)),
        custom_hooks=[dict(type='TrainTimeBudgetHook', budget_minutes=budget_minutes)],
        default_scope='mmengine')


def test_budget_stops_training_and_saves_checkpoint(tmp_path):
    runner = _runner(tmp_path, budget_minutes=0.3 / 60)  # 0.3 s: a handful of 50 ms iterations
    runner.train()
    assert 1 <= runner.iter < 40
    ckpt = osp.join(tmp_path, f'iter_{runner.iter}.pth')
    assert osp.exists(ckpt)
    with open(osp.join(tmp_path, 'last_checkpoint')) as f:
        assert f.read() == ckpt


def test_generous_budget_does_not_interfere(tmp_path):
    runner = _runner(tmp_path, budget_minutes=10, max_iters=5)
    runner.train()
    assert runner.iter == 5
