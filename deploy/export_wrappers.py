"""Export wrappers: an mmdet detector / mmseg segmentor as one module with graph post-processing.

Graph interface (dim 0 of every input is the batch, exported as dynamic):

* detectors: inputs ``input`` float32 [N, 3, H, W] (normalised, padded to the export shape) and
  ``img_shape`` float32 [N, 2] = (h, w) of each valid image inside the padding (boxes are
  clipped there, as mmdet clips to ``img_shape``); outputs ``dets`` float32 [K, 5] (x1, y1, x2,
  y2, score), ``labels`` int64 [K] and ``batch_indices`` int64 [K] (the image of each row), in
  the coordinates of ``input``, grouped by image and best first within an image. Every image
  gets what it gets alone (mmdet's per-image post-processing, per-image caps).
* segmentors: input ``input`` [N, 3, H, W]; outputs ``seg_logits`` float32 [N, C, H, W] (the
  decode head's logits resized to the input, as mmseg's ``predict_by_feat``) and ``labels``
  int64 [N, H, W] (their argmax).

Anchors/priors are constants computed for the export shape.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .postprocess import (batched_nms_keep, concat_levels, decode_with, gather_rows,
                          invalidate_small_boxes, level_topk)
from .roi_extraction import multilevel_roi_align

DET_INPUTS = ('input', 'img_shape')
DET_OUTPUTS = ('dets', 'labels', 'batch_indices')
SEG_INPUTS = ('input',)
SEG_OUTPUTS = ('seg_logits', 'labels')


def _cfg_get(cfg, key, default=None):
    if cfg is None:
        return default
    return cfg.get(key, default) if hasattr(cfg, 'get') else getattr(cfg, key, default)


def _nms_iou(cfg) -> float:
    nms = _cfg_get(cfg, 'nms')
    if nms is None:
        raise ValueError('test_cfg has no nms setting; ONNX export needs one')
    nms_type = _cfg_get(nms, 'type', 'nms')
    if str(nms_type).lower() != 'nms':
        raise NotImplementedError(f'ONNX export supports plain NMS only, got {nms_type!r}')
    return float(_cfg_get(nms, 'iou_threshold', _cfg_get(nms, 'iou_thr', 0.5)))


def _level_priors(prior_generator, feats: Sequence[Tensor]) -> List[Tensor]:
    sizes = [f.shape[-2:] for f in feats]
    return [p.detach().clone() for p in prior_generator.grid_priors(sizes, device='cpu')]


class _PriorsMixin:
    def _register_priors(self, priors: List[Tensor]):
        for i, p in enumerate(priors):
            self.register_buffer(f'priors_{i}', p)
        self.num_levels = len(priors)

    def priors(self) -> List[Tensor]:
        return [getattr(self, f'priors_{i}') for i in range(self.num_levels)]


def dense_candidates(head, cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                     priors: Sequence[Tensor], nms_pre: int, img_hw: Tensor
                     ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per image and level: top ``nms_pre`` (prior, class) scores and their decoded boxes.

    As mmdet's ``_predict_by_feat_single`` for anchor heads: sigmoid or softmax-without-
    background scores, top-k over all (prior, class) pairs of the level, decode.
    Returns boxes [N, M, 4], scores [N, M], labels [N, M], level ids [N, M].
    """
    boxes, scores, labels, level_ids = [], [], [], []
    num_classes = head.cls_out_channels
    for level, (cls, reg, pri) in enumerate(zip(cls_scores, bbox_preds, priors)):
        # -1 for the batch: sizes read from tensors can become constants of the traced batch
        # (binary conv outputs carry static shapes while tracing); the level size is static
        num_priors = int(pri.shape[0])
        cls = cls.permute(0, 2, 3, 1).reshape(-1, num_priors, num_classes)
        reg = reg.permute(0, 2, 3, 1).reshape(-1, num_priors, 4)
        probs = cls.sigmoid() if head.use_sigmoid_cls else cls.softmax(-1)[..., :-1]
        classes = int(probs.shape[2])
        top_scores, flat_idx = level_topk(probs.reshape(-1, num_priors * classes), nms_pre)
        prior_idx = torch.div(flat_idx, classes, rounding_mode='floor')
        deltas = torch.gather(reg, 1, prior_idx.unsqueeze(-1).expand(-1, -1, 4))
        boxes.append(decode_with(head.bbox_coder, pri[prior_idx], deltas, img_hw.unsqueeze(1)))
        scores.append(top_scores)
        labels.append(flat_idx - prior_idx * classes)
        level_ids.append(torch.full_like(flat_idx, level))
    return (concat_levels(boxes, 1), concat_levels(scores, 1), concat_levels(labels, 1),
            concat_levels(level_ids, 1))


def _dets(boxes: Tensor, scores: Tensor, labels: Tensor, image: Tensor, index: Tensor
          ) -> Tuple[Tensor, Tensor, Tensor]:
    """The graph outputs for the kept ``(image, index)`` of [N, M] candidates."""
    dets = torch.cat([gather_rows(boxes, image, index),
                      gather_rows(scores, image, index).unsqueeze(1)], dim=1)
    return dets, gather_rows(labels, image, index), image


class SingleStageDetectorWrapper(nn.Module, _PriorsMixin):
    """RetinaNet, SSD and other anchor-based single-stage detectors."""

    def __init__(self, detector: nn.Module, example_input: Tensor):
        super().__init__()
        self.detector = detector
        self.test_cfg = detector.bbox_head.test_cfg
        with torch.no_grad():
            feats = detector.extract_feat(example_input)
        self._register_priors(_level_priors(detector.bbox_head.prior_generator, feats))

    def forward(self, img: Tensor, img_shape: Tensor) -> Tuple[Tensor, Tensor]:
        head, cfg = self.detector.bbox_head, self.test_cfg
        cls_scores, bbox_preds = head(self.detector.extract_feat(img))
        boxes, scores, labels, _ = dense_candidates(head, cls_scores, bbox_preds, self.priors(),
                                                    int(_cfg_get(cfg, 'nms_pre', -1)), img_shape)
        score_thr = float(_cfg_get(cfg, 'score_thr', 0.0))
        scores = invalidate_small_boxes(boxes, scores, _cfg_get(cfg, 'min_bbox_size', -1),
                                        score_thr - 1.0)
        image, index = batched_nms_keep(boxes, scores, labels, _nms_iou(cfg), score_thr,
                                        int(_cfg_get(cfg, 'max_per_img', 100)))
        return _dets(boxes, scores, labels, image, index)


class TwoStageDetectorWrapper(nn.Module, _PriorsMixin):
    """Faster R-CNN style: RPN proposals, multi-level RoIAlign, bbox head, class-wise NMS.

    ``library_ops``: the RoI features as one ``bnn_tasks::MultiLevelRoiAlign`` node (graphs that
    load the native library anyway), else standard ops (``deploy/roi_extraction.py``).
    """

    def __init__(self, detector: nn.Module, example_input: Tensor, library_ops: bool = False):
        super().__init__()
        self.detector = detector
        self.library_ops = bool(library_ops)
        roi_head = detector.roi_head
        if getattr(roi_head, 'with_mask', False):
            raise NotImplementedError('ONNX export of mask heads is not supported')
        if getattr(roi_head, 'with_shared_head', False):
            raise NotImplementedError('ONNX export of RoI heads with a shared head is not '
                                      'supported')
        extractor = roi_head.bbox_roi_extractor
        layer = extractor.roi_layers[0]
        if type(layer).__name__ != 'RoIAlign' or getattr(layer, 'pool_mode', 'avg') != 'avg':
            raise NotImplementedError(f'ONNX export supports average RoIAlign only, got '
                                      f'{type(layer).__name__}')
        if getattr(extractor, 'roi_scale_factor', None) not in (None, 1, 1.0):
            raise NotImplementedError('roi_scale_factor is not supported by the ONNX export')
        self.roi_output_size = int(layer.output_size[0])
        self.roi_sampling_ratio = int(layer.sampling_ratio)
        self.roi_aligned = bool(layer.aligned)
        self.roi_strides = [int(s) for s in extractor.featmap_strides]
        self.finest_scale = float(extractor.finest_scale)
        self.rpn_cfg = detector.test_cfg.rpn
        self.rcnn_cfg = detector.test_cfg.rcnn
        with torch.no_grad():
            feats = detector.extract_feat(example_input)
        self._register_priors(_level_priors(detector.rpn_head.prior_generator, feats))

    def proposals(self, feats: Sequence[Tensor], img_shape: Tensor) -> Tuple[Tensor, Tensor]:
        """RPN boxes of all images: ``(image [P], boxes [P, 4])``, grouped by image and best
        first within one (mmdet's ``RPNHead._predict_by_feat_single`` per image)."""
        rpn, cfg = self.detector.rpn_head, self.rpn_cfg
        cls_scores, bbox_preds = rpn(feats)
        boxes, scores, _, level_ids = dense_candidates(rpn, cls_scores, bbox_preds,
                                                       self.priors(),
                                                       int(_cfg_get(cfg, 'nms_pre', -1)),
                                                       img_shape)
        # RPN scores are probabilities (> 0); -1 marks boxes the size filter removed.
        scores = invalidate_small_boxes(boxes, scores, _cfg_get(cfg, 'min_bbox_size', -1), -1.0)
        image, index = batched_nms_keep(boxes, scores, level_ids, _nms_iou(cfg), -0.5,
                                        int(_cfg_get(cfg, 'max_per_img', 1000)))
        return image, gather_rows(boxes, image, index)

    def forward(self, img: Tensor, img_shape: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        feats = self.detector.extract_feat(img)
        image, proposals = self.proposals(feats, img_shape)
        rois = torch.cat([image.to(proposals.dtype).unsqueeze(1), proposals], dim=1)
        roi_feats = multilevel_roi_align(feats[:len(self.roi_strides)], rois,
                                         self.roi_output_size, self.roi_strides,
                                         self.roi_sampling_ratio, self.roi_aligned,
                                         self.finest_scale, self.library_ops)
        bbox_head, cfg = self.detector.roi_head.bbox_head, self.rcnn_cfg
        cls_score, bbox_pred = bbox_head(roi_feats)
        probs = F.softmax(cls_score, dim=-1)[:, :-1]                 # [P, C]
        num_classes = probs.shape[1]
        deltas = bbox_pred.reshape(-1, 4)
        per_class = 1 if bbox_head.reg_class_agnostic else num_classes

        def per_class_rows(t: Tensor) -> Tensor:  # [P, D] -> [P * per_class, D]
            return t.unsqueeze(1).expand(-1, per_class, t.shape[1]).reshape(-1, t.shape[1])
        boxes = decode_with(bbox_head.bbox_coder, per_class_rows(proposals), deltas,
                            per_class_rows(img_shape[image]))
        boxes = boxes.reshape(-1, per_class, 4).expand(-1, num_classes, 4).reshape(-1, 4)
        scores = probs.reshape(-1)
        labels = torch.arange(num_classes, device=img.device).repeat(proposals.shape[0])
        box_image = image.unsqueeze(1).expand(-1, num_classes).reshape(-1)
        # The images' candidates are ragged; NMS takes one row per image, so every row holds
        # all candidates with the other images' ones scored out (N is small at deploy time).
        score_thr = float(_cfg_get(cfg, 'score_thr', 0.0))
        batch = torch.arange(img.shape[0], device=img.device)
        mine = box_image.unsqueeze(0) == batch.unsqueeze(1)             # [N, P * C]
        row_scores = torch.where(mine, scores.unsqueeze(0),
                                 torch.full_like(scores, score_thr - 1.0).unsqueeze(0))
        row_boxes = boxes.unsqueeze(0).expand(mine.shape[0], -1, -1)
        row_labels = labels.unsqueeze(0).expand(mine.shape[0], -1)
        out_image, index = batched_nms_keep(row_boxes, row_scores, row_labels, _nms_iou(cfg),
                                            score_thr, int(_cfg_get(cfg, 'max_per_img', 100)),
                                            valid=mine)
        dets = torch.cat([boxes[index], scores[index].unsqueeze(1)], dim=1)
        return dets, labels[index], out_image


class SegmentorWrapper(nn.Module):
    """mmseg encoder-decoder, whole-image inference."""

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, img: Tensor) -> Tuple[Tensor, Tensor]:
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(img))
        logits = F.interpolate(logits, size=img.shape[2:], mode='bilinear',
                               align_corners=head.align_corners)
        if logits.shape[1] == 1:  # binary segmentation: one logit and a threshold
            labels = (logits.sigmoid() > head.threshold).long()[:, 0]
        else:
            labels = logits.argmax(dim=1)
        return logits, labels


class BackboneWrapper(nn.Module):
    """A backbone alone (tests, size comparisons): outputs its feature maps."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, img: Tensor) -> Tuple[Tensor, ...]:
        out = self.backbone(img)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def model_kind(model: nn.Module) -> str:
    """``'two_stage'``, ``'single_stage'``, ``'segmentor'`` or ``'backbone'``."""
    if hasattr(model, 'roi_head') and hasattr(model, 'rpn_head'):
        return 'two_stage'
    if hasattr(model, 'bbox_head') and hasattr(model, 'extract_feat'):
        return 'single_stage'
    if hasattr(model, 'decode_head') and hasattr(model, 'extract_feat'):
        return 'segmentor'
    return 'backbone'


def batch_outputs(kind: str, output_names: Sequence[str]) -> Tuple[str, ...]:
    """The outputs whose dim 0 is the image batch (a detector's rows are detections)."""
    return () if kind in ('two_stage', 'single_stage') else tuple(output_names)


def build_export_wrapper(model: nn.Module, example_input: Tensor, library_ops: bool = False
                         ) -> Tuple[nn.Module, tuple, tuple]:
    """The export module for ``model`` with its input and output names; ``library_ops``: the
    graph may use the library's ops beyond ``BinaryConv2d`` (see ``TwoStageDetectorWrapper``)."""
    kind = model_kind(model)
    if kind == 'two_stage':
        return (TwoStageDetectorWrapper(model, example_input, library_ops), DET_INPUTS,
                DET_OUTPUTS)
    if kind == 'single_stage':
        return SingleStageDetectorWrapper(model, example_input), DET_INPUTS, DET_OUTPUTS
    if kind == 'segmentor':
        return SegmentorWrapper(model), SEG_INPUTS, SEG_OUTPUTS
    wrapper = BackboneWrapper(model)
    with torch.no_grad():
        n = len(wrapper(example_input))
    return wrapper, ('input',), tuple(f'feat{i}' for i in range(n))
