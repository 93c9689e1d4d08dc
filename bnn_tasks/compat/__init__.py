"""Fixes for known breakages of the pinned stack, one module per breakage, applied on import.

- ``ssd_head_loss_cls``: mmdet 3.3.0 ``SSDHead.predict`` AttributeError ``loss_cls``.
- ``checkpoint_safe_globals``: mmengine 0.10.7 cannot load its own checkpoints under
  torch >= 2.6 (``torch.load(weights_only=True)`` by default); allow-list the types they hold.
- ``atomic_checkpoint_writes``: mmengine 0.10.7 writes checkpoints and ``last_checkpoint`` in
  place and prunes old checkpoints before saving the new one; a kill mid-save loses them.
- ``cpu_distributed_init``: mmengine 0.10.7 ``--launcher pytorch`` calls
  ``torch.cuda.set_device`` unconditionally, so CPU-only (gloo) distributed runs fail.
- ``seg_class_weight_ignore``: mmseg 1.2.2 ``CrossEntropyLoss`` with ``class_weight`` raises
  IndexError on pixels labelled ``ignore_index`` (padding, VOC borders).
- ``mmcv_ops_bf16``: mmcv 2.1.0 CPU ``nms`` and ``RoIAlign`` reject bfloat16 tensors, so a
  Faster R-CNN cannot train under bfloat16 autocast (``--amp``); they run in float32.
- ``config_format_cache``: mmengine 0.10.7 reformats the whole config with yapf (~0.9 s) each
  time ``Config.pretty_text`` is read, at every checkpoint save among others.
- mmseg 1.2.2 imports ``ftfy`` and ``regex`` without declaring them: handled by
  ``requirements/runtime.txt``, nothing to patch.

Each fix is idempotent and only touches the library when that library is installed.
"""
from . import (atomic_checkpoint_writes, checkpoint_safe_globals, config_format_cache,
               cpu_distributed_init, mmcv_ops_bf16, seg_class_weight_ignore, ssd_head_loss_cls)

APPLIED = {}


def apply_all() -> dict:
    """Apply every fix; returns ``{name: True | 'skipped: <reason>'}``."""
    for name, module in (('checkpoint_safe_globals', checkpoint_safe_globals),
                         ('atomic_checkpoint_writes', atomic_checkpoint_writes),
                         ('cpu_distributed_init', cpu_distributed_init),
                         ('ssd_head_loss_cls', ssd_head_loss_cls),
                         ('seg_class_weight_ignore', seg_class_weight_ignore),
                         ('mmcv_ops_bf16', mmcv_ops_bf16),
                         ('config_format_cache', config_format_cache)):
        if APPLIED.get(name) is True:
            continue
        try:
            APPLIED[name] = module.apply()
        except ImportError as e:  # e.g. mmdet not installed: nothing to fix
            APPLIED[name] = f'skipped: {e}'
    return APPLIED


apply_all()
