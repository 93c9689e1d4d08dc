"""Every detection / segmentation config in configs/ builds, trains one step and predicts.

Digits flavours run on the tiny generated set (96 px inputs via overrides); the COCO / VOC
flavours (no data here) build their model, run one forward pass on a random image and their
dataset config names the standard paths and registered types.
"""
import glob
import math
import os.path as osp

import pytest
import torch
from conftest import REPO, digits_overrides
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import bnn_tasks  # noqa: F401
from bnn_tasks.layers import BinaryConv2d

CONFIG_DIRS = ('baselines', 'bireal', 'group_net', 'xnorpp')
CONFIGS = sorted(p for d in CONFIG_DIRS for p in glob.glob(osp.join(REPO, 'configs', d, '*.py')))
DIGITS = [p for p in CONFIGS if 'digits' in osp.basename(p)]
OTHERS = [p for p in CONFIGS if 'digits' not in osp.basename(p)]
BINARY = [p for p in CONFIGS if not p.split(osp.sep)[-2] == 'baselines']


def _ids(paths):
    return [osp.basename(p)[:-3] for p in paths]


def _registries(scope):
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import DATASETS, MODELS
    else:
        from mmseg.registry import DATASETS, MODELS
    return MODELS, DATASETS


def test_config_set_is_complete():
    names = {osp.basename(p) for p in CONFIGS}
    for tag in ('r18', 'bireal18', 'groupnet18', 'xnorpp18'):
        for ds in ('digits', 'voc0712', 'coco'):
            assert f'faster-rcnn_{tag}_fpn_{ds}.py' in names
            assert f'retinanet_{tag}_fpn_{ds}.py' in names
        assert f'ssd256_{tag}_digits.py' in names
        assert f'ssd300_{tag}_voc0712.py' in names and f'ssd300_{tag}_coco.py' in names
        assert f'fcn_{tag}-d8_digits.py' in names and f'fcn_{tag}-d8_voc12aug.py' in names


@pytest.mark.parametrize('path', DIGITS, ids=_ids(DIGITS))
def test_digits_config_trains_one_step_and_predicts(path, tiny_digits):
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(digits_overrides(cfg, tiny_digits))
    assert cfg.custom_imports['imports'] == ['bnn_tasks']
    scope = cfg.default_scope
    MODELS, DATASETS = _registries(scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    losses = model.train_step(pseudo_collate([train_set[0], train_set[1]]), optim)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert math.isfinite(float(total)) and float(total) > 0

    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    model.eval()
    with torch.no_grad():
        out = model.val_step(pseudo_collate([val_set[0]]))
    assert len(out) == 1
    if scope == 'mmdet':
        pred = out[0].pred_instances
        assert pred.bboxes.shape[-1] == 4 and len(pred.bboxes) == len(pred.scores)
        assert (pred.labels < 10).all()
    else:
        seg = out[0].pred_sem_seg.data
        assert seg.shape[-2:] == tuple(out[0].ori_shape) and int(seg.max()) < 11


@pytest.mark.parametrize('path', OTHERS, ids=_ids(OTHERS))
def test_coco_voc_config_builds_model_and_dataset_cfg(path):
    cfg = Config.fromfile(path)
    scope = cfg.default_scope
    MODELS, DATASETS = _registries(scope)
    model = MODELS.build(cfg.model)
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds or 'datasets' in ds:
        ds = ds['dataset'] if 'dataset' in ds else ds['datasets'][0]
    assert DATASETS.get(ds['type']) is not None
    assert ds['data_root'].startswith(('data/coco', 'data/VOCdevkit'))
    assert DATASETS.get(cfg.val_dataloader.dataset['type']) is not None
    model.eval()
    size = 300 if 'ssd300' in path else 128
    with torch.no_grad():  # one forward pass through backbone, neck (and dense head)
        feats = model.extract_feat(torch.rand(1, 3, size, size))
        assert all(torch.isfinite(f).all() for f in feats)
        if hasattr(model, 'bbox_head'):
            cls_scores = model.bbox_head(feats)[0]
            assert len(cls_scores) == len(feats)

@pytest.mark.parametrize('path', [p for p in BINARY if 'faster-rcnn' in p or 'fcn' in p][:8])
def test_binary_latent_weights_get_no_weight_decay(path):
    cfg = Config.fromfile(path)
    MODELS, _ = _registries(cfg.default_scope)
    model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {id(p): g['weight_decay'] for g in optim.optimizer.param_groups for p in g['params']}
    binary = [m.weight for m in model.modules() if isinstance(m, BinaryConv2d)]
    assert binary, 'no binary convs found'
    assert all(decay[id(w)] == 0 for w in binary)
    # the float head keeps its weight decay
    head_convs = [m.weight for n, m in model.named_modules()
                  if isinstance(m, torch.nn.Conv2d) and not isinstance(m, BinaryConv2d)
                  and not n.startswith('backbone')]
    assert head_convs and all(decay[id(w)] > 0 for w in head_convs)
