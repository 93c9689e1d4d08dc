"""Distillation losses between a student's and a frozen teacher's tensors."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


FEATURE_LOSSES = ('mse', 'relative')
# how ``logits_kl`` reduces the per-anchor/pixel KL: a plain mean, or (detector dense heads)
# a sum over the maps per anchor the teacher calls an object, as focal/SSD losses normalize
LOGITS_REDUCTIONS = ('mean', 'teacher_foreground')


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


def teacher_foreground(teacher: Tensor, sigmoid: bool) -> Tensor:
    """Per anchor, the teacher's probability that it holds an object, from ``(N, A, C, H, W)``
    class logits: the largest class probability (sigmoid heads: RetinaNet, RPN), or one minus
    the background's (softmax heads: SSD; mmdet puts background last)."""
    if sigmoid:
        return torch.sigmoid(teacher).amax(dim=2)
    return 1 - F.softmax(teacher, dim=2)[:, :, -1]


def logits_kl(student: Sequence[Tensor], teacher: Sequence[Tensor], channels: int,
              sigmoid: bool, temperature: float = 1.0,
              class_weight: Optional[Tensor] = None, reduction: str = 'mean') -> Tensor:
    """KL between class logits, per anchor/pixel, over every map of a head.

    Maps are ``(N, A * channels, H, W)`` (mmdet dense heads: A anchors, classes innermost) or
    ``(N, channels, H, W)`` (mmseg decode heads). Scaled by T^2 (Hinton et al.) so the gradient
    size does not depend on the temperature.

    ``reduction='mean'`` averages each map over its elements (sigmoid: anchors x classes), then
    over maps. ``'teacher_foreground'`` (detector dense heads) sums the KL over every map and
    divides by the teacher's soft count of object anchors (:func:`teacher_foreground`, at least
    1), as RetinaNet's focal loss and SSD's loss divide by their positive anchors. A dense
    head's anchors are nearly all background, where teacher and student agree, so the mean
    shrinks with the anchor count (about 0.004 against a focal loss of 0.5 on the digits
    RetinaNet); this sum does not.

    ``class_weight`` (softmax logits only; one weight per class): each anchor/pixel counts the
    weight of the teacher's most likely class there, and the mean is weighted, as a
    class-weighted cross-entropy averages. Where one class covers nearly every pixel (the
    background of a segmentation), the plain mean averages away the few pixels where the two
    models disagree about the rare classes.
    """
    if reduction not in LOGITS_REDUCTIONS:
        raise ValueError(f'distillation: unknown logits reduction {reduction!r}; use one of '
                         f'{", ".join(LOGITS_REDUCTIONS)}')
    if class_weight is not None:
        if sigmoid:
            raise ValueError('distillation: class weights apply to softmax logits; this head '
                             'uses sigmoid logits')
        if reduction != 'mean':
            raise ValueError('distillation: class weights weigh a mean; give one or the '
                             f'{reduction!r} reduction')
        if class_weight.numel() != channels:
            raise ValueError(f'distillation: {class_weight.numel()} class weights for a head '
                             f'of {channels} classes')
    losses, foreground = [], []
    for s, t in zip(student, teacher):
        if s.shape != t.shape:
            raise ValueError(f'distillation: logits {tuple(s.shape)} (student) vs '
                             f'{tuple(t.shape)} (teacher)')
        n, c, h, w = s.shape
        if c % channels:
            raise ValueError(f'distillation: logits of {c} channels are not whole anchors of '
                             f'{channels} classes')
        shape = (n, c // channels, channels, h, w)
        s, t = s.reshape(shape), t.reshape(shape)
        soft_s, soft_t = s / temperature, t / temperature
        kl = sigmoid_kl(soft_s, soft_t).sum(dim=2) if sigmoid else \
            softmax_kl(soft_s, soft_t, dim=2)
        if reduction == 'teacher_foreground':
            losses.append(kl.sum())
            # counted from the teacher's own (untempered) beliefs
            foreground.append(teacher_foreground(t, sigmoid).sum())
        elif sigmoid:
            losses.append(kl.mean() / channels)  # the mean over anchors x classes
        elif class_weight is None:
            losses.append(kl.mean())
        else:
            weight = class_weight.to(kl)[t.argmax(dim=2)]
            losses.append((weight * kl).sum() / weight.sum().clamp_min(1e-12))
    if reduction == 'teacher_foreground':
        return torch.stack(losses).sum() / torch.stack(foreground).sum().clamp_min(1.0) \
            * temperature**2
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
