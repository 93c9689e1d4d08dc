"""Metrics reported by tools/test.py equal independent computations on the same predictions.

A stand-in model turns each image's ground truth into imperfect predictions (jittered boxes,
some wrong labels, false positives; masks with corrupted regions), deterministically per
image, so the metrics are far from 0 and 1. tools/test.py evaluates it through the real
config/dataset/metric path and dumps the predictions; the test recomputes COCO mAP with
pycocotools, VOC mAP with mmdet's ``eval_map`` and mIoU with numpy from those dumps.
"""
import glob
import json
import os.path as osp
import pickle

import cv2
import numpy as np
import torch
from conftest import REPO, digits_overrides, load_tool, options_to_cli
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.structures import InstanceData, PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS as SEG_MODELS
from torch import nn

test_tool = load_tool('test')

DET = osp.join(REPO, 'configs', 'bireal', 'faster-rcnn_bireal18_fpn_digits.py')
SEG = osp.join(REPO, 'configs', 'bireal', 'fcn_bireal18-d8_digits.py')


@DET_MODELS.register_module(force=True)
class NoisyOracleDetector(BaseModel):
    """Predictions = ground truth jittered, 20% relabelled, plus 3 false positives/image."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=DetDataPreprocessor())
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        for ds in data_samples:
            g = torch.Generator().manual_seed(int(ds.img_id))
            gt = ds.gt_instances
            n = len(gt.bboxes)
            boxes = gt.bboxes.clone().float()
            wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
            boxes = boxes + (torch.rand(n, 4, generator=g) - 0.5) * 0.5 * wh
            labels = gt.labels.clone()
            flip = torch.rand(n, generator=g) < 0.2
            labels[flip] = (labels[flip] + 1) % 10
            h, w = ds.ori_shape
            corner = torch.rand(3, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
            size = 6 + torch.rand(3, 2, generator=g) * 20
            fp = torch.cat([corner, corner + size], 1)
            ds.pred_instances = InstanceData(
                bboxes=torch.cat([boxes, fp]),
                scores=torch.rand(n + 3, generator=g),
                labels=torch.cat([labels, torch.randint(0, 10, (3, ), generator=g)]))
        return data_samples


@SEG_MODELS.register_module(force=True)
class NoisyOracleSegmentor(BaseModel):
    """Predictions = ground truth with a random block relabelled and some strokes erased."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=SegDataPreProcessor())
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        for i, ds in enumerate(data_samples):
            gt = ds.gt_sem_seg.data[0].clone()
            g = torch.Generator().manual_seed(abs(hash(osp.basename(ds.img_path))) % 2**31)
            h, w = gt.shape
            y, x = (torch.rand(2, generator=g) * torch.tensor([h / 2, w / 2])).long()
            block = gt[y:y + h // 3, x:x + w // 3]
            gt[y:y + h // 3, x:x + w // 3] = (block + 1 + torch.randint(
                0, 3, (1, ), generator=g)) % 11
            erase = (torch.rand(h, w, generator=g) < 0.2) & (gt > 0)
            gt[erase] = 0
            ds.pred_sem_seg = PixelData(data=gt[None])
        return data_samples


def _oracle_config(tmp_path, base, model_type):
    path = tmp_path / f'{model_type}.py'
    path.write_text(f"_base_ = {base!r}\nmodel = dict(_delete_=True, type={model_type!r})\n")
    return str(path)


def _oracle_ckpt(tmp_path, model):
    path = str(tmp_path / 'oracle.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def _run_test(config, ckpt, root, tmp_path, extra):
    opts = digits_overrides(Config.fromfile(config), root)
    code = test_tool.run_tool(test_tool.main, [config, ckpt, '--work-dir', str(tmp_path)]
                              + extra + ['--cfg-options'] + options_to_cli(opts))
    assert code == 0
    with open(tmp_path / 'test_metrics.json') as f:
        return json.load(f)


def test_coco_and_voc_map_match_pycocotools_and_eval_map(tiny_digits, tmp_path):
    from mmdet.evaluation.functional import eval_map
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    config = _oracle_config(tmp_path, DET, 'NoisyOracleDetector')
    ckpt = _oracle_ckpt(tmp_path, NoisyOracleDetector())
    out = str(tmp_path / 'preds.pkl')
    metrics = _run_test(config, ckpt, tiny_digits, tmp_path, ['--out', out])
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4

    ann_file = osp.join(tiny_digits, 'annotations', 'instances_val.json')
    coco_gt = COCO(ann_file)
    cat_ids = sorted(coco_gt.getCatIds())
    dets = []
    for p in preds:
        inst = p['pred_instances']
        for box, score, label in zip(np.asarray(inst['bboxes']), np.asarray(inst['scores']),
                                     np.asarray(inst['labels'])):
            x0, y0, x1, y1 = box.tolist()
            dets.append(dict(image_id=int(p['img_id']), category_id=cat_ids[int(label)],
                             bbox=[x0, y0, x1 - x0, y1 - y0], score=float(score)))
    ev = COCOeval(coco_gt, coco_gt.loadRes(dets), 'bbox')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert 0.05 < ev.stats[0] < 0.95, 'stand-in predictions should be neither hopeless nor perfect'
    assert abs(metrics['coco/bbox_mAP'] - round(ev.stats[0], 3)) < 1e-6
    assert abs(metrics['coco/bbox_mAP_50'] - round(ev.stats[1], 3)) < 1e-6

    # VOC mAP@0.5 straight from mmdet's eval_map on per-class arrays built here
    det_results, annotations = [], []
    for p in preds:
        inst = p['pred_instances']
        boxes, scores, labels = (np.asarray(inst[k]) for k in ('bboxes', 'scores', 'labels'))
        det_results.append([np.hstack([boxes[labels == c], scores[labels == c, None]])
                            .reshape(-1, 5).astype(np.float32) for c in range(10)])
        anns = coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=[int(p['img_id'])]))
        gt_boxes = np.array([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                              a['bbox'][1] + a['bbox'][3]] for a in anns], np.float32)
        gt_labels = np.array([cat_ids.index(a['category_id']) for a in anns], np.int64)
        annotations.append(dict(bboxes=gt_boxes, labels=gt_labels,
                                bboxes_ignore=np.zeros((0, 4), np.float32),
                                labels_ignore=np.zeros((0, ), np.int64)))
    # the VOC devkit's inclusive-pixel convention (w = x2 - x1 + 1), as VOCMetric uses
    voc_map, _ = eval_map(det_results, annotations, iou_thr=0.5, eval_mode='area',
                          logger='silent', use_legacy_coordinate=True)
    assert 0.05 < voc_map < 0.99
    assert abs(metrics['pascal_voc/mAP'] - voc_map) < 1e-6


def test_miou_matches_numpy(tiny_digits, tmp_path):
    config = _oracle_config(tmp_path, SEG, 'NoisyOracleSegmentor')
    ckpt = _oracle_ckpt(tmp_path, NoisyOracleSegmentor())
    out = tmp_path / 'pred'
    metrics = _run_test(config, ckpt, tiny_digits, tmp_path, ['--out', str(out)])
    files = sorted(glob.glob(str(out / '*.png')))
    assert len(files) == 4
    inter = np.zeros(11)
    union = np.zeros(11)
    for path in files:
        pred = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.int64)
        gt = cv2.imread(osp.join(tiny_digits, 'masks', osp.basename(path)),
                        cv2.IMREAD_UNCHANGED).astype(np.int64)
        valid = gt != 255
        for c in range(11):
            p, t = (pred == c) & valid, (gt == c) & valid
            inter[c] += (p & t).sum()
            union[c] += (p | t).sum()
    with np.errstate(invalid='ignore', divide='ignore'):
        miou = np.nanmean(np.where(union > 0, inter / union, np.nan)) * 100
    assert 10 < miou < 95
    assert abs(metrics['mIoU'] - round(miou, 2)) < 1e-4  # mmseg reports float32, 2 decimals
