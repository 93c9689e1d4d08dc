"""Distillation losses between a student's and a frozen teacher's tensors."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


FEATURE_LOSSES = ('mse', 'relative')


def feature_mse(student: Sequence[Tensor], teacher: Sequence[Tensor], where: str,
                kind: str = 'mse') -> Tensor:
    """Mean over feature maps of the MSE between matching student and teacher maps.

    ``kind='relative'`` divides each map's MSE by the teacher map's mean square: a scale-free
    error (0 = equal, 1 = as far off as a zero map), so maps of large magnitude (real-valued
    shortcuts accumulate through a Bi-Real backbone) do not outweigh the task losses.
    """
    if kind not in FEATURE_LOSSES:
        raise ValueError(f'distillation: unknown feature loss {kind!r}; use one of '
                         f'{", ".join(FEATURE_LOSSES)}')
    if len(student) != len(teacher):
        raise ValueError(f'distillation: {where} gives {len(student)} student maps and '
                         f'{len(teacher)} teacher maps')
    losses = []
    for i, (s, t) in enumerate(zip(student, teacher)):
        if s.shape != t.shape:
            raise ValueError(f'distillation: {where}[{i}] is {tuple(s.shape)} in the student and '
                             f'{tuple(t.shape)} in the teacher; the teacher needs the same '
                             'feature shapes')
        loss = F.mse_loss(s, t)
        if kind == 'relative':
            loss = loss / t.pow(2).mean().clamp_min(1e-12)
        losses.append(loss)
    return torch.stack(losses).mean()


def sigmoid_kl(student: Tensor, teacher: Tensor) -> Tensor:
    """Per-element Bernoulli KL(teacher || student) of sigmoid logits (RetinaNet, RPN)."""
    p = torch.sigmoid(teacher)
    return (p * (F.logsigmoid(teacher) - F.logsigmoid(student))
            + (1 - p) * (F.logsigmoid(-teacher) - F.logsigmoid(-student)))


def softmax_kl(student: Tensor, teacher: Tensor, dim: int) -> Tensor:
    """KL(teacher || student) of softmax logits over ``dim`` (SSD, decode heads)."""
    log_p = F.log_softmax(teacher, dim=dim)
    return (log_p.exp() * (log_p - F.log_softmax(student, dim=dim))).sum(dim=dim)


def logits_kl(student: Sequence[Tensor], teacher: Sequence[Tensor], channels: int,
              sigmoid: bool, temperature: float = 1.0,
              class_weight: Optional[Tensor] = None) -> Tensor:
    """Mean KL between class logits, per anchor/pixel, over every map of a head.

    Maps are ``(N, A * channels, H, W)`` (mmdet dense heads: A anchors, classes innermost) or
    ``(N, channels, H, W)`` (mmseg decode heads). Scaled by T^2 (Hinton et al.) so the gradient
    size does not depend on the temperature.

    ``class_weight`` (softmax logits only; one weight per class): each anchor/pixel counts the
    weight of the teacher's most likely class there, and the mean is weighted, as a
    class-weighted cross-entropy averages. Where one class covers nearly every pixel (the
    background of a segmentation), the plain mean averages away the few pixels where the two
    models disagree about the rare classes.
    """
    if class_weight is not None:
        if sigmoid:
            raise ValueError('distillation: class weights apply to softmax logits; this head '
                             'uses sigmoid logits')
        if class_weight.numel() != channels:
            raise ValueError(f'distillation: {class_weight.numel()} class weights for a head '
                             f'of {channels} classes')
    losses = []
    for s, t in zip(student, teacher):
        if s.shape != t.shape:
            raise ValueError(f'distillation: logits {tuple(s.shape)} (student) vs '
                             f'{tuple(t.shape)} (teacher)')
        s, t = s / temperature, t / temperature
        if sigmoid:
            losses.append(sigmoid_kl(s, t).mean())
            continue
        n, c, h, w = s.shape
        shape = (n, c // channels, channels, h, w)
        t = t.reshape(shape)
        kl = softmax_kl(s.reshape(shape), t, dim=2)
        if class_weight is None:
            losses.append(kl.mean())
        else:
            weight = class_weight.to(kl)[t.argmax(dim=2)]
            losses.append((weight * kl).sum() / weight.sum().clamp_min(1e-12))
    return torch.stack(losses).mean() * temperature**2


def roi_logits_kl(student: Tensor, teacher: Tensor, sigmoid: bool,
                  temperature: float = 1.0) -> Tensor:
    """Mean KL between per-RoI class logits ``(num_rois, classes)`` (background included for
    softmax heads), scaled by T^2 as :func:`logits_kl`."""
    if student.shape != teacher.shape:
        raise ValueError(f'distillation: RoI logits {tuple(student.shape)} (student) vs '
                         f'{tuple(teacher.shape)} (teacher); the teacher needs the same classes')
    s, t = student / temperature, teacher / temperature
    kl = sigmoid_kl(s, t) if sigmoid else softmax_kl(s, t, dim=1)
    return kl.mean() * temperature**2
