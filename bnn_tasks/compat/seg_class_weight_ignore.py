"""mmseg 1.2.2: ``CrossEntropyLoss`` with ``class_weight`` crashes on ignored pixels.

To average a class-weighted loss, ``mmseg.models.losses.cross_entropy_loss.cross_entropy``
sums the weights of every label with ``class_weight[cls] for cls in label``; a pixel labelled
``ignore_index`` (255: padding, VOC object borders) indexes past the weight vector:
``IndexError: index 255 is out of bounds for dimension 0 with size 11``. So a segmentor with
``class_weight`` dies on the first padded batch (e.g. a crop larger than a small image).

Fix: compute that average factor without indexing ignored pixels: they weigh 0 with
``avg_non_ignore=True`` and 1 otherwise (as each ignored pixel counts 1 in mmseg's unweighted
average), then call mmseg's function with it. ``CrossEntropyLoss`` binds the function when it is
built, so the module attribute is replaced at import of bnn_tasks, before any model exists.
"""
import functools


def apply() -> bool:
    import torch
    from mmseg.models.losses import cross_entropy_loss as module
    if getattr(module.cross_entropy, '_bnn_tasks_ignore_fix', False):
        return True
    original = module.cross_entropy

    @functools.wraps(original)
    def cross_entropy(pred, label, weight=None, class_weight=None, reduction='mean',
                      avg_factor=None, ignore_index=-100, avg_non_ignore=False):
        if class_weight is not None and avg_factor is None and reduction == 'mean':
            ignored = label == ignore_index
            weights = class_weight[torch.where(ignored, torch.zeros_like(label), label)]
            filler = 0.0 if avg_non_ignore else 1.0
            avg_factor = torch.where(ignored, torch.full_like(weights, filler), weights).sum()
        return original(pred, label, weight=weight, class_weight=class_weight,
                        reduction=reduction, avg_factor=avg_factor, ignore_index=ignore_index,
                        avg_non_ignore=avg_non_ignore)

    cross_entropy._bnn_tasks_ignore_fix = True
    module.cross_entropy = cross_entropy
    return True
