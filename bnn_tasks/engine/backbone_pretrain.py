"""Pretrain a config's backbone as a digit classifier, for ``load_from`` in that config.

Detection and segmentation backbones, binary ones included, are normally ImageNet-pretrained
(the survey's Group-Net and Bi-Real detection/segmentation results start that way). Nothing can
be downloaded here, so the stand-in is a classifier trained on crops of the dataset's own
training objects (``bnn_tasks.datasets.digit_crops``): the backbone, exactly as the config
builds it, plus global average pooling and a linear layer. Only the backbone is saved, under
the ``backbone.`` prefix the detector/segmentor uses, so ``load_from`` picks it up (heads start
fresh) and ``tools/train.py`` checks that every backbone weight fits.

The schedule fits a wall-clock budget: the first iterations are timed, then the number of
iterations is fixed so that warm-up plus cosine decay end when the budget is spent, and refitted
at the shares of the budget every budgeted run refits at (``budget.REFIT_AT``: 10 % and 50 %)
from the step time since the previous fit.
"""
import logging
import math
import time
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..build import build_backbone
from ..checkpoint import save_checkpoint
from .budget import RefitTimer, iterations_for_budget
from .optim_constructor import without_lr_multipliers

BACKBONE_PREFIX = 'backbone.'
# Fit the schedule after these steps, then refit at budget.REFIT_AT, each time from the step
# time since the previous fit (RefitTimer): the first steps can be several times slower than
# the rest (measured 1.7 s against 0.43 s for a Bi-Real pretraining), and a schedule fitted on
# them alone ended in 2.9 of 5 minutes.
_TIMING_ITERS = (3, 20)


class BackboneClassifier(nn.Module):
    """``backbone`` -> its last output -> global average pool -> linear classifier."""

    def __init__(self, backbone: nn.Module, num_classes: int, probe_size: int = 64):
        super().__init__()
        self.backbone = backbone
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad():
            channels = backbone(torch.zeros(1, 3, probe_size, probe_size))[-1].shape[1]
        backbone.train(was_training)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1].mean(dim=(2, 3)))


class InputNormalizer:
    """The config's data preprocessor normalisation, for BGR uint8 NHWC images or crops."""

    def __init__(self, cfg):
        pre = cfg.model.get('data_preprocessor') or {}
        self.mean = torch.tensor(pre.get('mean', [0.0, 0.0, 0.0]), dtype=torch.float32)
        self.std = torch.tensor(pre.get('std', [1.0, 1.0, 1.0]), dtype=torch.float32)
        self.to_rgb = bool(pre.get('bgr_to_rgb', False))

    def __call__(self, crops: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(crops).float()
        if self.to_rgb:
            x = x.flip(-1)
        x = (x - self.mean) / self.std
        return x.permute(0, 3, 1, 2).contiguous()


def _lr_factor(it: int, total: int, warmup: int) -> float:
    if it < warmup:
        return 0.01 + 0.99 * it / warmup
    progress = (it - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def evaluate(model: nn.Module, crops, normalize, batch_size: int = 256) -> float:
    """Top-1 accuracy (%) over every object of ``crops`` (a ``DigitCrops``)."""
    model.eval()
    correct = 0
    for start in range(0, len(crops), batch_size):
        images, labels = crops.fixed(start, min(start + batch_size, len(crops)))
        pred = model(normalize(images)).argmax(1).numpy()
        correct += int((pred == labels).sum())
    model.train()
    return 100.0 * correct / len(crops)


def pretraining_optim_wrapper(cfg) -> dict:
    """``cfg.optim_wrapper`` at the full rate: pretraining is the backbone's own training."""
    return without_lr_multipliers(cfg.optim_wrapper)


def pretrain_backbone(cfg, train_crops, val_crops, out: str, minutes: Optional[float] = None,
                      max_iters: Optional[int] = None, batch_size: int = 64, seed: int = 0,
                      log_interval: int = 20, logger: Optional[logging.Logger] = None) -> dict:
    """Train ``cfg``'s backbone on ``train_crops`` for ``minutes`` and/or ``max_iters``.

    The backbone is saved to ``out``. With ``minutes`` the schedule is fitted to the time (at
    most ``max_iters``); with ``max_iters`` alone it is exactly that many iterations.

    The optimizer is the config's own ``optim_wrapper`` (the binary recipe: AdamW, no decay on
    latent binary weights, gradient clipping) without its lr multipliers
    (``pretraining_optim_wrapper``), its type included: the forward runs in the wrapper's
    ``optim_context`` (bfloat16 autocast for ``CPUAmpOptimWrapper``, what ``--amp`` sets).
    Returns a summary with the validation accuracy.
    """
    from mmengine.optim import build_optim_wrapper
    log = logger or logging.getLogger(__name__)
    if minutes is None and not max_iters:
        raise ValueError('give minutes, max_iters or both')
    if (minutes is not None and minutes <= 0) or (max_iters is not None and max_iters < 1):
        raise ValueError(f'minutes and max_iters must be positive, got {minutes}, {max_iters}')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = BackboneClassifier(build_backbone(cfg), len(train_crops.classes),
                               probe_size=train_crops.crop_size)
    model.train()
    optim = build_optim_wrapper(model, pretraining_optim_wrapper(cfg))
    base_lrs = [g['lr'] for g in optim.optimizer.param_groups]
    normalize = InputNormalizer(cfg)
    loss_fn = nn.CrossEntropyLoss()

    budget_s = minutes * 60.0 if minutes is not None else float('inf')
    total = max_iters or 10**9  # fixed after the timing iterations when there is a budget
    warmup = _TIMING_ITERS[0] + 1
    start = time.monotonic()
    it = 0
    seen_correct = seen = 0
    timer = RefitTimer(budget_s)  # on the elapsed-seconds clock, timing from the start
    timer.start(0.0, 0)
    while it < total:
        factor = _lr_factor(it, total, warmup)
        for group, lr in zip(optim.optimizer.param_groups, base_lrs):
            group['lr'] = lr * factor
        images, labels = train_crops.sample(rng, batch_size)
        target = torch.from_numpy(labels)
        with optim.optim_context(model):  # bfloat16 autocast under a CPUAmpOptimWrapper
            logits = model(normalize(images))
            loss = loss_fn(logits, target)
        optim.update_params(loss)
        seen_correct += int((logits.argmax(1) == target).sum())
        seen += len(labels)
        it += 1
        elapsed = time.monotonic() - start
        recent = None
        if minutes is not None and it < total:
            if it in _TIMING_ITERS:
                recent = timer.step_time(elapsed, it)
            elif it > _TIMING_ITERS[-1]:
                recent = timer.due_step_time(elapsed, it)
        if recent is not None:
            fit = iterations_for_budget(budget_s, elapsed, it, recent)
            total = min(max_iters or fit, fit)
            if it <= warmup:  # a later refit does not restart the warm-up
                warmup = max(_TIMING_ITERS[0] + 1, total // 20)
            log.info(f'pretrain: {recent:.2f} s/iter -> {total} iterations '
                     f'({warmup} warm-up) in {minutes:g} min')
        elif minutes is None and it == _TIMING_ITERS[0]:
            warmup = max(warmup, total // 20)
        if it % log_interval == 0 or it == total:
            log.info(f'pretrain: iter {it}/{total}  loss {loss.item():.3f}  '
                     f'train acc {100.0 * seen_correct / seen:.1f}%  lr {base_lrs[0] * factor:.2e}'
                     f'  {elapsed / 60:.1f} min')
            seen_correct = seen = 0
        if elapsed > budget_s * 1.05 and it > _TIMING_ITERS[-1]:  # slower than timed: stop anyway
            log.info(f'pretrain: budget spent at iteration {it}/{total}; stopping')
            break
    train_minutes = (time.monotonic() - start) / 60
    accuracy = evaluate(model, val_crops, normalize)
    summary = dict(iterations=it, minutes=round(train_minutes, 2), batch_size=batch_size,
                   crop_size=train_crops.crop_size, val_accuracy=round(accuracy, 2),
                   num_val_objects=len(val_crops), classes=list(train_crops.classes))
    log.info(f'pretrain: {it} iterations in {train_minutes:.1f} min, validation accuracy '
             f'{accuracy:.1f}% on {len(val_crops)} crops')
    state = {BACKBONE_PREFIX + k: v for k, v in model.backbone.state_dict().items()}
    save_checkpoint(dict(state_dict=state, meta=dict(backbone_pretrain=summary)), out)
    return summary


def _backbone_part(state_dict: dict) -> dict:
    return {k[len(BACKBONE_PREFIX):]: v for k, v in state_dict.items()
            if k.startswith(BACKBONE_PREFIX)}


def check_backbone_checkpoint(model: nn.Module, state_dict: dict, path: str) -> None:
    """Refuse a backbone checkpoint that does not fit ``model.backbone`` (names or shapes).

    Raises ``bnn_tasks.checkpoint.CheckpointMismatchError`` (a ``ValueError``).
    """
    from bnn_tasks.checkpoint import check_state_dict
    check_state_dict(model.backbone, _backbone_part(state_dict),
                     source=f'pretrained backbone {path!r}')


def load_backbone_checkpoint(backbone: nn.Module, path: str) -> None:
    """Load the ``backbone.`` weights of a pretraining or whole-model checkpoint, strictly.

    Raises ``bnn_tasks.checkpoint.CheckpointError`` (a ``ValueError``) naming the file when
    it cannot be read safely or does not fit ``backbone``.
    """
    from bnn_tasks.checkpoint import check_state_dict, read_checkpoint, state_dict_of
    state = _backbone_part(state_dict_of(read_checkpoint(path, 'backbone checkpoint')))
    check_state_dict(backbone, state, source=f'backbone weights of {path!r}')
    backbone.load_state_dict(state, strict=False)  # checked above, optional buffers aside
