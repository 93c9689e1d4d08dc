"""An FCN head trained with a class-weighted loss that predicts as if the loss were unweighted.

A class weight w_c in the cross-entropy moves the head's optimum from p(c|x) to a distribution
proportional to w_c * p(c|x): down-weighting a dominant background (needed so that a digits FCN
does not settle on "background everywhere") also pushes every uncertain pixel to a digit, which
costs IoU (tools/seg_stride_ceiling.py: background weight 0.1 caps the ideal stride-8 mIoU at 48
instead of 72). Subtracting log(w_c) from the logits at inference undoes that prior shift
(logit adjustment, Menon et al., ICLR 2021), so training keeps the weights and prediction does
not pay for them. Done in ``forward`` in eval mode, so mmseg's inference and the ONNX export
(which calls the head directly) see the same corrected logits.
"""
import torch
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from torch import Tensor, nn


def loss_class_weight(loss_decode):
    """The class weights of a decode head's (first weighted) loss, or None."""
    losses = loss_decode if isinstance(loss_decode, nn.ModuleList) else [loss_decode]
    for loss in losses:
        weight = getattr(loss, 'class_weight', None)
        if weight is not None:
            return list(weight)
    return None


@MODELS.register_module()
class PriorCorrectedFCNHead(FCNHead):
    """``FCNHead`` whose eval-mode logits are corrected by ``-log(class_weight)``.

    Takes FCNHead's arguments; the weights are those of ``loss_decode`` (none: no correction).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        weight = loss_class_weight(self.loss_decode)
        if weight is not None and len(weight) != self.out_channels:
            raise ValueError(f'PriorCorrectedFCNHead: {len(weight)} class weights for '
                             f'{self.out_channels} classes')
        if weight is not None and min(weight) <= 0:
            raise ValueError(f'PriorCorrectedFCNHead: class weights must be > 0, got {weight}')
        correction = (-torch.log(torch.tensor(weight, dtype=torch.float32))
                      if weight is not None else torch.zeros(self.out_channels))
        # not persistent: derived from the config, so checkpoints stay plain FCNHead ones
        self.register_buffer('logit_correction', correction.view(1, -1, 1, 1), persistent=False)

    def forward(self, inputs) -> Tensor:
        logits = super().forward(inputs)
        return logits if self.training else logits + self.logit_correction

    def training_logits(self, eval_logits: Tensor) -> Tensor:
        """Eval-mode logits back in training form (a frozen teacher's, for distillation)."""
        return eval_logits - self.logit_correction
