"""The float-to-binary recipe for any binary config (docs/training.md, "Two-stage recipe").

Stage 1 (:func:`float_stage`): the same network with real-valued weights and clip(-1, 1)
activations wherever the config binarizes (a binary block has no other nonlinearity, so identity
activations would make it linear). Same modules, same parameter names. The real-valued weights
are each kernel binarizer's ``float_relaxation`` (``bnn_tasks.binarizers``): of the magnitude
the binary weights will have, so that a learned output scale (XNOR-Net++'s alpha) fitted in
stage 1 still fits in stage 2. With
``activations='binary'`` stage 1 keeps the config's binary activations and makes only the
weights real-valued (ReActNet's first step), so stage 2 binarizes only the weights.

Stage 2 (:func:`binary_stage`): the binary config, started from stage 1's weights, AdamW at half
the from-scratch learning rate (``lr_factor``) for every parameter (no part is fresh, so a
``*_pretrained`` config's slower backbone is dropped), and (by default) distilled from the
frozen stage-1 model (:class:`bnn_tasks.models.DistillingModel`). Optionally it binarizes
gradually (``binarize_warmup``, :class:`bnn_tasks.engine.BinarizationWarmupHook`).

Both functions take and return mmengine ``Config`` objects (a deep copy; the input is untouched).
"""
import copy
import inspect
from typing import Optional

from ..backbones import BiRealResNet, GroupNetResNet, XNORPPResNet
from ..binarizers import build_binarizer
from ..layers import BINARY_CONVS, BINARY_METHODS, CONV_CFG_BUILDERS
from ..layers.methods import DEFAULT_METHOD
from .optim_constructor import without_lr_multipliers

FLOAT_INPUT_QUANTIZER = 'hardtanh'
# What stage 1 does with the activations the config binarizes: clip them (the default) or keep
# them binary (float weights only).
FLOAT_STAGE_ACTIVATIONS = ('clip', 'binary')
# Backbones whose binary convs take input_quantizer/kernel_quantizer overrides, each with the
# binarization method its class fixes (None: the node's ``method=``, else DEFAULT_METHOD).
BINARY_BACKBONE_METHODS = {**{cls.__name__: cls.method
                              for cls in (BiRealResNet, GroupNetResNet, XNORPPResNet)},
                           'BinaryTimmBackbone': None}
# conv_cfg types (necks, heads) that build binary convs.
BINARY_CONV_TYPES = tuple(CONV_CFG_BUILDERS) + tuple(BINARY_CONVS)
BINARIZED_TYPES = tuple(BINARY_BACKBONE_METHODS) + BINARY_CONV_TYPES
# Share of the budget (minutes and iterations) the float stage gets. Measured on the Bi-Real
# Faster R-CNN: 14 + 26 minutes (35/65) gave 0.864 VOC mAP@0.5; a float stage much shorter than
# a third leaves the binary stage starting from features that are not yet useful.
FIRST_STAGE_FRACTION = 0.4
# Stage 2 starts close to a good solution: half the from-scratch learning rate.
BINARY_STAGE_LR_FACTOR = 0.5
ADAM_FAMILY = ('Adam', 'AdamW')


class RecipeError(ValueError):
    """The config cannot go through the recipe (e.g. it is not binary)."""


def _binarized_nodes(model_cfg):
    """Every dict of the model config that builds binary convs (backbones and conv_cfgs)."""
    stack = [model_cfg]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get('type') in BINARIZED_TYPES:
                yield node
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def _kernel_quantizer(node):
    """The kernel binarizer (name or dict) the binary backbone or conv_cfg ``node`` builds."""
    if node.get('kernel_quantizer') is not None:
        return node['kernel_quantizer']
    if node['type'] in BINARY_CONVS:  # a binary conv class named directly: its own default
        return inspect.signature(BINARY_CONVS[node['type']]).parameters['kernel_quantizer'].default
    method = node.get('method') or BINARY_BACKBONE_METHODS.get(node['type']) or DEFAULT_METHOD
    return BINARY_METHODS[method]['kernel_quantizer']


def _is_float(node) -> bool:
    return not build_binarizer(_kernel_quantizer(node), 'kernel').is_sign


def check_binary(cfg, config_path: str = 'config') -> None:
    """Refuse a config without binary convs, or one that is already a float stage."""
    nodes = list(_binarized_nodes(cfg.model))
    if not nodes:
        raise RecipeError(f'{config_path} has no binary backbone or binary conv (types '
                          f'{", ".join(BINARIZED_TYPES)}): it is already '
                          'a float network; the two-stage recipe takes a binary config')
    if all(_is_float(n) for n in nodes):
        raise RecipeError(f'{config_path} already has float weights (a real-valued '
                          'kernel_quantizer): it is a float stage, not a binary config')


def float_stage(cfg, config_path: str = 'config', activations: str = 'clip'):
    """Stage 1 of ``cfg``: float weights and clip(-1, 1) activations (``activations='clip'``)
    or the config's own binary ones (``'binary'``), same parameter names."""
    if activations not in FLOAT_STAGE_ACTIVATIONS:
        raise RecipeError(f'float-stage activations must be one of '
                          f'{", ".join(FLOAT_STAGE_ACTIVATIONS)}, got {activations!r}')
    check_binary(cfg, config_path)
    cfg = copy.deepcopy(cfg)
    for node in _binarized_nodes(cfg.model):
        if activations == 'clip':
            node['input_quantizer'] = FLOAT_INPUT_QUANTIZER
        node['kernel_quantizer'] = build_binarizer(_kernel_quantizer(node),
                                                   'kernel').float_relaxation
    return cfg


def check_lr_factor(lr_factor: float) -> None:
    """Refuse a binary-stage learning-rate factor that is not positive."""
    if not lr_factor > 0:
        raise RecipeError(f"the binary stage's learning-rate factor must be > 0, got "
                          f'{lr_factor}')


def check_warmup_fraction(fraction: float) -> None:
    """Refuse a binarization warm-up share of the binary stage outside (0, 1]."""
    if not 0 < fraction <= 1:
        raise RecipeError(f'the binarization warm-up must be a share of the binary stage in '
                          f'(0, 1], got {fraction}')


def with_binarization_warmup(cfg, fraction: float, stage1_activations: str = 'clip'):
    """``cfg`` that binarizes gradually over the first ``fraction`` of its iterations, from
    the float stage's function (``BinarizationWarmupHook``); for a run that starts from float
    weights (stage 2, or any binary config with a float ``load_from``)."""
    check_warmup_fraction(fraction)
    cfg = copy.deepcopy(cfg)
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'BinarizationWarmupHook']
    cfg.custom_hooks = hooks + [dict(type='BinarizationWarmupHook', fraction=fraction,
                                     relax_activations=stage1_activations == 'clip')]
    return cfg


def _adam_family(cfg, lr_factor: float) -> None:
    check_lr_factor(lr_factor)
    optimizer = cfg.optim_wrapper.optimizer
    if optimizer.get('type') not in ADAM_FAMILY:
        # binary nets need Adam's per-parameter steps (latent weights far from zero get
        # almost no gradient through the clipped STE); binary_optim.py's defaults
        cfg.optim_wrapper.optimizer = dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                                           weight_decay=1e-4)
        optimizer = cfg.optim_wrapper.optimizer
    optimizer['lr'] = optimizer['lr'] * lr_factor


def binary_stage(cfg, stage1_checkpoint: str, config_path: str = 'config', distill: bool = True,
                 teacher_config=None, teacher_checkpoint: Optional[str] = None,
                 distill_cfg: Optional[dict] = None, lr_factor: float = BINARY_STAGE_LR_FACTOR,
                 stage1_activations: str = 'clip', binarize_warmup: Optional[float] = None):
    """Stage 2 of ``cfg``: the binary network loaded from ``stage1_checkpoint``.

    ``distill``: wrap the model in a ``DistillingModel`` whose teacher is ``teacher_config``
    (default: :func:`float_stage` of ``cfg`` with ``stage1_activations``) loaded from
    ``teacher_checkpoint`` (default: the stage-1 checkpoint). ``distill_cfg``:
    ``DistillingModel`` options (loss weights, ...). ``binarize_warmup``: binarize gradually
    over that share of the stage (:func:`with_binarization_warmup`); None: at once.
    The optimizer constructor (``BinaryOptimWrapperConstructor``: no decay on latent binary
    weights) comes from the config.
    """
    check_binary(cfg, config_path)
    cfg = copy.deepcopy(cfg)
    cfg.load_from = stage1_checkpoint  # weights only: a fresh optimizer and schedule
    cfg.resume = False
    # the backbone that a *_pretrained config slows for its fresh heads must now re-fit most:
    # measured on the Bi-Real-18 FCN, stage 2 from the same stage 1 reached mIoU 43.1 at the
    # full rate against 34.6 at a tenth (docs/results/recipe)
    cfg.optim_wrapper = without_lr_multipliers(cfg.optim_wrapper)
    _adam_family(cfg, lr_factor)
    if binarize_warmup is not None:
        cfg = with_binarization_warmup(cfg, binarize_warmup, stage1_activations)
    if distill:
        teacher = (float_stage(cfg, config_path, stage1_activations) if teacher_config is None
                   else teacher_config)
        cfg = with_teacher(cfg, teacher, teacher_checkpoint or stage1_checkpoint, distill_cfg)
    return cfg


def with_teacher(cfg, teacher_config, teacher_checkpoint: str,
                 distill_cfg: Optional[dict] = None):
    """``cfg`` whose model is a ``DistillingModel``: ``cfg.model`` the student, the frozen
    ``teacher_config.model`` loaded from ``teacher_checkpoint`` the teacher. Stage 2 always
    takes one; stage 1 only from another model (``--distill-float-stage``)."""
    cfg = copy.deepcopy(cfg)
    cfg.model = dict(type='DistillingModel', student=cfg.model,
                     teacher=copy.deepcopy(teacher_config.model),
                     teacher_checkpoint=teacher_checkpoint, **(distill_cfg or {}))
    return cfg


def student_config(cfg):
    """The config of the network a stage-2 run trains (what test/export need): the
    ``DistillingModel``'s student, without ``load_from``."""
    cfg = copy.deepcopy(cfg)
    if cfg.model.get('type') == 'DistillingModel':
        cfg.model = cfg.model['student']
    cfg.load_from = None
    return cfg


def split_budget(total, fraction: float = FIRST_STAGE_FRACTION, integer: bool = False):
    """``(stage 1, stage 2)`` shares of ``total`` (None stays None)."""
    if not 0 < fraction < 1:
        raise RecipeError(f'first-stage fraction must be in (0, 1), got {fraction}')
    if total is None:
        return None, None
    first = total * fraction
    if integer:
        first = max(1, int(round(first)))
        return first, max(1, int(total) - first)
    return round(first, 4), round(total - first, 4)
