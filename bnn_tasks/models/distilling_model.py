"""``DistillingModel``: train a student detector/segmentor with a frozen teacher's guidance.

    model = dict(type='DistillingModel', student=<binary model cfg>, teacher=<model cfg>,
                 teacher_checkpoint='work_dirs/x/stage1_float/iter_600.pth',
                 feat_weight=1.0, logits_weight=1.0, roi_logits_weight=1.0, temperature=1.0,
                 feature_sources=('backbone', 'neck'), logits_reduction='mean')

In ``loss`` mode the student's own losses get up to three more, logged under their own names:

* ``loss_distill_feat``: MSE between student and teacher backbone stage outputs and neck
  outputs (``feature_sources``), times ``feat_weight``;
* ``loss_distill_logits``: KL between the class logits of the dense head, times
  ``logits_weight``: per-pixel decode-head logits (segmentation), the dense head's class scores
  (RetinaNet, SSD), the RPN objectness (two-stage detectors). A segmentation's pixels weigh
  like in its cross-entropy (``logits_class_weight='loss'``: the decode loss's class weights,
  by the teacher's class), and a teacher whose eval-mode head shifts its logits
  (``PriorCorrectedFCNHead``) is compared in training form, as the student's are. A detector's
  dense-head KL is a mean over all anchors and classes, or with
  ``logits_reduction='teacher_foreground'`` a sum normalized by the anchors the teacher
  calls objects, on the scale of the focal/SSD loss it is added to;
* ``loss_distill_roi_logits`` (two-stage detectors): KL between the RoI head's class logits
  on the RoIs the student sampled, the teacher's computed by its own RoI head on its own
  features at those same boxes (the two would otherwise sample different RoIs), times
  ``roi_logits_weight``.

The teacher is frozen: eval mode, no gradients, not a registered submodule, so it is in
neither the optimizer, nor DDP, nor the checkpoints. The checkpoints hold the student alone
under its own keys (``backbone.*``, not ``student.backbone.*``): ``tools/test.py``, export and
``load_from`` take them with the plain binary config. ``predict``/``tensor`` modes (val, test)
run the student only.
"""
import contextlib
from collections import OrderedDict
from typing import Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from ..backbones.registry import REGISTRIES
from ..heads.prior_corrected_fcn_head import loss_class_weight
from .distill_losses import (FEATURE_LOSSES, LOGITS_REDUCTIONS, feature_mse, logits_kl,
                             roi_logits_kl)

STUDENT = 'student.'


def _logits_head(model):
    """``(head, classes per anchor/pixel, sigmoid?)`` whose class logits are distilled."""
    for name in ('rpn_head', 'bbox_head', 'decode_head'):
        head = getattr(model, name, None)
        if head is None or (name == 'bbox_head' and hasattr(model, 'roi_head')):
            continue
        if name == 'decode_head':
            return head, head.out_channels, bool(getattr(head, 'use_sigmoid', False))
        return head, head.cls_out_channels, bool(getattr(head, 'use_sigmoid_cls', False))
    raise ValueError(f'distillation: {type(model).__name__} has no rpn_head, dense bbox_head '
                     'or decode_head')


def _logits_class_weight(option, model) -> Optional[torch.Tensor]:
    """The per-class weights of the logits KL (see ``DistillingModel``), or None."""
    if option is None:
        return None
    if isinstance(option, str):
        if option != 'loss':
            raise ValueError(f"DistillingModel: logits_class_weight={option!r}; use 'loss', "
                             'None or one weight per class')
        head = getattr(model, 'decode_head', None)
        weight = loss_class_weight(head.loss_decode) if head is not None else None
        return None if weight is None else torch.tensor(weight, dtype=torch.float32)
    _, channels, sigmoid = _logits_head(model)
    weight = torch.tensor([float(w) for w in option], dtype=torch.float32)
    if sigmoid or weight.numel() != channels:
        raise ValueError(f'DistillingModel: logits_class_weight has {weight.numel()} weights; '
                         f'the logits head has {channels} softmax classes'
                         + (' (it uses sigmoid logits: give None)' if sigmoid else ''))
    if (weight < 0).any() or weight.sum() <= 0:
        raise ValueError(f'DistillingModel: logits_class_weight must be >= 0 and not all 0, '
                         f'got {option}')
    return weight


def _logits_reduction(option, model) -> str:
    """Check the logits KL's reduction (see ``DistillingModel``) against the model's head."""
    if option not in LOGITS_REDUCTIONS:
        raise ValueError(f'DistillingModel: logits_reduction={option!r}; use one of '
                         f'{", ".join(LOGITS_REDUCTIONS)}')
    if option != 'mean' and getattr(model, 'decode_head', None) is not None:
        raise ValueError(f"DistillingModel: logits_reduction={option!r} normalizes by a "
                         "detector's object anchors; a segmentor's pixels take 'mean' (weigh "
                         'them with logits_class_weight)')
    return option


def _roi_head(model):
    """The RoI head whose class logits are distilled, or None (one-stage detectors, segmentors)."""
    roi_head = getattr(model, 'roi_head', None)
    if roi_head is None:
        return None
    if not hasattr(roi_head, '_bbox_forward') or getattr(roi_head, 'bbox_head', None) is None:
        raise ValueError(f'distillation: {type(roi_head).__name__} has no single bbox head with '
                         '_bbox_forward(x, rois) (StandardRoIHead); set roi_logits_weight=0')
    return roi_head


def _roi_logits_sigmoid(roi_head) -> bool:
    return bool(getattr(getattr(roi_head.bbox_head, 'loss_cls', None), 'use_sigmoid', False))


def _as_tensors(output) -> list:
    """A module output as a list of maps: stages/levels, or the class scores of a dense head."""
    if torch.is_tensor(output):
        return [output]
    output = list(output)
    if output and isinstance(output[0], (list, tuple)):  # (cls_scores, bbox_preds)
        return list(output[0])
    return output


@contextlib.contextmanager
def _observed(obj, method: str, observe):
    """Call ``observe(args, output)`` after each call of ``obj.<method>`` while the block runs.

    Wraps the method on the instance rather than adding a forward hook: mmseg's decode heads
    call ``self.forward(...)`` directly, and ``_bbox_forward`` is no module call at all; hooks
    see neither. Deleting the instance attribute restores the class's method.
    """
    original = getattr(obj, method)

    def observed(*args, **kwargs):
        out = original(*args, **kwargs)
        observe(args, out)
        return out
    setattr(obj, method, observed)
    try:
        yield
    finally:
        delattr(obj, method)


@contextlib.contextmanager
def _capture(modules: dict):
    """Record the first output of each named module while the block runs."""
    outputs = {}
    with contextlib.ExitStack() as stack:
        for name, module in modules.items():
            stack.enter_context(_observed(
                module, 'forward', lambda args, out, name=name: outputs.setdefault(name, out)))
        yield outputs


@contextlib.contextmanager
def _capture_sampled_rois(roi_head):
    """Record ``(rois, cls_score)`` of the first ``roi_head._bbox_forward(x, rois)`` call while
    the block runs (the RoIs the student's loss sampled); nothing when ``roi_head`` is None."""
    calls = []
    if roi_head is None:
        yield calls
        return

    def observe(args, out):
        if not calls:
            calls.append((args[1].detach(), out['cls_score']))
    with _observed(roi_head, '_bbox_forward', observe):
        yield calls


def _build(cfg):
    if isinstance(cfg, torch.nn.Module):
        return cfg
    scope = cfg.get('_scope_')
    registry = REGISTRIES.get(scope, MODELS)  # default scope (the runner's) when unscoped
    return registry.build(cfg)


class DistillingModel(BaseModel):
    """A student trained with its own losses plus distillation from a frozen teacher.

    Args:
        student: the trained model (config or module); its data preprocessor is used.
        teacher: the teacher model (config or module): same backbone/neck output shapes and
            same logits head layout as the student (the float stage of the same config, or a
            float twin with the same neck and heads).
        teacher_checkpoint: weights loaded into the teacher (strictly); None keeps its
            initialization (tests only).
        feat_weight, logits_weight: loss weights (0 turns a loss off).
        roi_logits_weight: weight of the RoI head's logits KL (two-stage detectors; the teacher
            needs a RoI head with the same classes).
        temperature: softening of the logits for the KL terms.
        feature_sources: which outputs ``loss_distill_feat`` compares: 'backbone', 'neck'.
        feat_loss: 'mse' (raw MSE of the maps) or 'relative' (each map's MSE over the
            teacher map's mean square: scale-free).
        logits_class_weight: how the per-pixel logits KL weighs pixels (softmax heads):
            'loss' (the class weights of the student's decode loss, by the teacher's class;
            every pixel alike when it has none, and for detectors), None (every pixel alike),
            or one weight per class.
        logits_reduction: how the dense-head logits KL is reduced: 'mean' (over all
            anchors/pixels and, for sigmoid heads, classes) or 'teacher_foreground'
            (detectors: the sum over all anchors over the teacher's soft count of object
            anchors, as the focal and SSD losses normalize by their positive anchors).
    """

    def __init__(self, student, teacher, teacher_checkpoint: Optional[str] = None,
                 feat_weight: float = 1.0, logits_weight: float = 1.0,
                 roi_logits_weight: float = 1.0, temperature: float = 1.0,
                 feature_sources: Sequence[str] = ('backbone', 'neck'),
                 feat_loss: str = 'mse',
                 logits_class_weight: Union[str, Sequence[float], None] = 'loss',
                 logits_reduction: str = 'mean', init_cfg=None, data_preprocessor=None):
        student = _build(student)
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.student = student
        teacher = _build(teacher)
        if teacher_checkpoint is not None:
            self._load_teacher(teacher, teacher_checkpoint)
        teacher.requires_grad_(False)
        teacher.eval()
        # a plain list: not a submodule, so not in parameters(), state_dict() or DDP
        self._teacher = [teacher]
        self.teacher_checkpoint = teacher_checkpoint
        self.feat_weight, self.logits_weight = float(feat_weight), float(logits_weight)
        self.roi_logits_weight = float(roi_logits_weight)
        if self.roi_logits_weight and _roi_head(student) is not None and \
                _roi_head(teacher) is None:
            raise ValueError('DistillingModel: the student has a RoI head and the teacher has '
                             'none; give a two-stage teacher or roi_logits_weight=0')
        self.temperature = float(temperature)
        unknown = set(feature_sources) - {'backbone', 'neck'}
        if unknown:
            raise ValueError(f'DistillingModel: unknown feature_sources {sorted(unknown)}; '
                             "use 'backbone' and/or 'neck'")
        self.feature_sources = tuple(feature_sources)
        if feat_loss not in FEATURE_LOSSES:
            raise ValueError(f'DistillingModel: unknown feat_loss {feat_loss!r}; use one of '
                             f'{", ".join(FEATURE_LOSSES)}')
        self.feat_loss = feat_loss
        self.logits_class_weight = _logits_class_weight(logits_class_weight, student)
        self.logits_reduction = _logits_reduction(logits_reduction, student)
        self._register_state_dict_hook(_student_keys_on_save)
        self._register_load_state_dict_pre_hook(_student_keys_on_load)

    @property
    def teacher(self):
        return self._teacher[0]

    @staticmethod
    def _load_teacher(teacher, path: str) -> None:
        from ..checkpoint import read_checkpoint, state_dict_of
        state = state_dict_of(read_checkpoint(path, 'teacher checkpoint'))
        state = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                            for k, v in state.items())
        teacher.load_state_dict(state, strict=True)
        # the runner's log (the model is built after its logger)
        print_log(f'distillation teacher loaded from {path}', logger='current')

    # the teacher follows device moves but never leaves eval mode
    def _apply(self, fn, *args, **kwargs):
        if hasattr(self, '_teacher'):
            self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True):
        super().train(mode)
        if hasattr(self, '_teacher'):
            self.teacher.eval()
        return self

    # ----------------------------------------------------------------------------- forward
    def _taps(self, model) -> dict:
        taps = {}
        if 'backbone' in self.feature_sources:
            taps['backbone'] = model.backbone
        neck = getattr(model, 'neck', None)
        if 'neck' in self.feature_sources and neck is not None:
            taps['neck'] = neck
        taps['logits'] = _logits_head(model)[0]
        return taps

    @torch.no_grad()
    def _teacher_outputs(self, inputs, rois=None) -> dict:
        """The teacher's tapped outputs; with ``rois``, also its RoI class logits there."""
        teacher = self.teacher
        head = _logits_head(teacher)[0]
        with _capture(self._taps(teacher)) as outputs:
            feats = teacher.extract_feat(inputs)
            head(feats)
        if hasattr(head, 'training_logits'):  # undo an eval-mode shift the student's lack
            outputs['logits'] = head.training_logits(outputs['logits'])
        if rois is not None:
            outputs['roi_logits'] = _roi_head(teacher)._bbox_forward(feats, rois)['cls_score']
        return outputs

    def loss(self, inputs, data_samples) -> dict:
        roi_head = _roi_head(self.student) if self.roi_logits_weight else None
        with _capture(self._taps(self.student)) as student_out, \
                _capture_sampled_rois(roi_head) as sampled:
            losses = self.student.loss(inputs, data_samples)
        rois, student_roi_logits = sampled[0] if sampled else (None, None)
        if rois is not None and not len(rois):  # nothing sampled: no term
            rois = None
        teacher_out = self._teacher_outputs(inputs, rois)
        if rois is not None:
            losses['loss_distill_roi_logits'] = self.roi_logits_weight * roi_logits_kl(
                student_roi_logits, teacher_out['roi_logits'], _roi_logits_sigmoid(roi_head),
                self.temperature)
        if self.feat_weight:
            feat = [feature_mse(_as_tensors(student_out[k]), _as_tensors(teacher_out[k]), k,
                                self.feat_loss)
                    for k in ('backbone', 'neck') if k in student_out]
            if feat:
                losses['loss_distill_feat'] = self.feat_weight * torch.stack(feat).mean()
        if self.logits_weight:
            _, channels, sigmoid = _logits_head(self.student)
            losses['loss_distill_logits'] = self.logits_weight * logits_kl(
                _as_tensors(student_out['logits']), _as_tensors(teacher_out['logits']),
                channels, sigmoid, self.temperature, self.logits_class_weight,
                self.logits_reduction)
        return losses

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)


def _student_keys_on_save(module, state_dict, prefix, local_metadata):
    """Save the student under its own keys; the aliased data preprocessor once (its own)."""
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(prefix + STUDENT):
            out[prefix + key[len(prefix + STUDENT):]] = value
        elif not key.startswith(prefix + 'data_preprocessor.'):
            out[key] = value
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        out._metadata = OrderedDict()
        for key, value in metadata.items():
            if key.startswith(prefix + 'student'):
                key = prefix + key[len(prefix + 'student'):].lstrip('.')
            out._metadata[key] = value
    return out


def _student_keys_on_load(state_dict, prefix, local_metadata, strict, missing_keys,
                          unexpected_keys, error_msgs):
    """Checkpoints hold the student's own keys: route them to ``student.``."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix):]
        if not rest.startswith(STUDENT):
            state_dict[prefix + STUDENT + rest] = state_dict.pop(key)
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in list(metadata):
            if key.startswith(prefix) and not key[len(prefix):].startswith('student'):
                metadata.setdefault((prefix + STUDENT + key[len(prefix):]).rstrip('.'),
                                    metadata[key])


for _registry in (MODELS, *REGISTRIES.values()):
    _registry.register_module(module=DistillingModel, force=True)
