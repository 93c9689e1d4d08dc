"""mmdet 3.3.0: ``SSDHead.predict`` raises ``AttributeError: 'SSDHead' object has no attribute
'loss_cls'``.

``BaseDenseHead._predict_by_feat_single`` asks ``getattr(self.loss_cls, 'custom_cls_channels',
False)`` to decide how to turn logits into scores. ``SSDHead.__init__`` skips
``AnchorHead.__init__`` (which builds ``self.loss_cls``) because SSD computes its classification
loss inline with ``F.cross_entropy`` and hard-negative mining; so the attribute never exists.

Fix: after ``SSDHead.__init__``, set ``loss_cls = None`` when the head did not build one. The
prediction path then falls through to ``use_sigmoid_cls`` (False for SSD: softmax), exactly as
intended; the training loss does not use the attribute. Done per instance (not as a class
attribute) so subclasses that build a real ``loss_cls`` module are unaffected.
"""
import functools


def apply() -> bool:
    """Patch SSDHead once; returns True when the patch is (already) in place."""
    from mmdet.models.dense_heads.ssd_head import SSDHead
    if getattr(SSDHead.__init__, '_bnn_tasks_loss_cls_fix', False):
        return True
    original_init = SSDHead.__init__

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if not hasattr(self, 'loss_cls'):
            self.loss_cls = None

    __init__._bnn_tasks_loss_cls_fix = True
    SSDHead.__init__ = __init__
    return True
