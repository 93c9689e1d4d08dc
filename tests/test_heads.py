"""PriorCorrectedFCNHead: trains like FCNHead, predicts with logits - log(class_weight)."""
import math

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import bnn_tasks  # noqa: F401


def _head(class_weight):
    init_default_scope('mmseg')
    loss = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    if class_weight is not None:
        loss['class_weight'] = class_weight
    return MODELS.build(dict(type='PriorCorrectedFCNHead', in_channels=8, channels=4,
                             num_convs=1, num_classes=3, loss_decode=loss))


def test_eval_logits_are_shifted_by_minus_log_weight_and_train_logits_are_not():
    torch.manual_seed(0)
    head = _head([0.1, 1.0, 2.0])
    feats = [torch.randn(2, 8, 5, 5)]
    head.train()
    train_logits = head(feats)
    head.eval()
    eval_logits = head(feats)
    # dropout makes train mode random: compare eval logits with the raw FCNHead in eval mode
    raw = super(type(head), head).forward(feats)
    shift = torch.tensor([-math.log(0.1), 0.0, -math.log(2.0)]).view(1, 3, 1, 1)
    assert torch.allclose(eval_logits, raw + shift)
    assert train_logits.shape == eval_logits.shape
    assert 'logit_correction' not in head.state_dict()  # checkpoints stay FCNHead's


def test_without_class_weight_nothing_changes():
    head = _head(None).eval()
    feats = [torch.randn(1, 8, 4, 4)]
    assert torch.equal(head(feats), super(type(head), head).forward(feats))


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match='2 class weights for 3 classes'):
        _head([1.0, 1.0])
    with pytest.raises(ValueError, match='must be > 0'):
        _head([0.0, 1.0, 1.0])
