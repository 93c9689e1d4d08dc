"""Save the random number generators with each checkpoint; restore them when resuming.

mmengine's resume restores weights, optimizer, schedulers, the seed and the data order (the
iteration loop replays the sampler up to the checkpoint), but not the generators' states, so
a resumed run draws other RPN/RoI samples and other augmentations than the run it continues.
This hook stores Python's, NumPy's and torch's generator states in the checkpoint's ``meta``
and sets them again exactly where the interrupted run stood: after the loop has replayed the
dataloader to the checkpoint's iteration (replaying draws from the generators when the data
pipeline runs in the main process) and before the next batch is drawn.

Single-process runs continue bit for bit; in a distributed run only rank 0 writes the
checkpoint, so the other ranks' states are not known and no rank's generators are set.
"""
import random

import numpy as np
import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from .mmengine_adapter import wrap_train_iterator

META_KEY = 'rng_state'


def capture_rng_state() -> dict:
    version, internal, gauss = random.getstate()
    return dict(python=[version, list(internal), gauss], numpy=list(np.random.get_state()),
                torch=torch.get_rng_state())


def restore_rng_state(state: dict) -> None:
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state['numpy']))
    torch.set_rng_state(state['torch'])


class _RestoreAfter:
    """Wraps a dataloader iterator: sets the saved state once ``skip`` batches were drawn."""

    def __init__(self, iterator, skip: int, state: dict):
        self._iterator, self._left, self._state = iterator, skip, state
        if skip == 0:
            restore_rng_state(state)

    def __iter__(self):
        return self

    def __next__(self):
        if self._left == 0:
            return next(self._iterator)
        batch = next(self._iterator)
        self._left -= 1
        if self._left == 0:
            restore_rng_state(self._state)
        return batch

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Keeps the generators' states in checkpoints so that ``--resume`` continues exactly."""
    priority = 'VERY_HIGH'

    def __init__(self):
        self._resumed_state = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[META_KEY] = capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner._resume and dist.get_world_size() == 1:  # not for load_from (fine-tuning)
            self._resumed_state = (checkpoint.get('meta') or {}).get(META_KEY)

    def before_train(self, runner) -> None:
        state, self._resumed_state = self._resumed_state, None
        if state is None:
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            # the loop replays runner.iter batches before the next one is trained on
            wrap_train_iterator(loop, lambda it: _RestoreAfter(it, runner.iter, state))
        else:  # epoch loops build a fresh iterator per epoch: no replay
            restore_rng_state(state)
        runner.logger.info(f'RandomStateHook: random generators restored to iteration '
                           f'{runner.iter}')
