"""BinaryOptimWrapperConstructor: latent binary weights found by type get no weight decay."""
import os.path as osp

import pytest
from conftest import REPO
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from torch import nn

import bnn_tasks  # noqa: F401  (registers the constructor and backbones)
from bnn_tasks.backbones.timm_binary import BinaryTimmBackbone
from bnn_tasks.layers.binary_conv import BinaryConv2d

WRAPPER = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
               constructor='BinaryOptimWrapperConstructor',
               paramwise_cfg=dict(norm_decay_mult=0.0))


def _groups_by_name(model, wrapper_cfg):
    optim = build_optim_wrapper(model, wrapper_cfg).optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g for g in optim.param_groups for p in g['params']}


class _Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = BinaryTimmBackbone(model_name='resnet18', method='bireal',
                                           out_indices=(1, 2, 3, 4))
        self.head = nn.Conv2d(512, 4, 1)


def test_binarized_timm_latent_weights_get_no_decay():
    model = _Detector()
    binary = {f'{name}.weight' for name, m in model.named_modules()
              if isinstance(m, BinaryConv2d)}
    assert len(binary) > 10  # timm's own module names: no 'unitK.conv' among them
    groups = _groups_by_name(model, WRAPPER)
    for name in binary:
        assert groups[name]['weight_decay'] == 0.0, name
    float_convs = [n for n, m in model.named_modules() if type(m) is nn.Conv2d]
    assert float_convs  # the stem (kept in float) and the head still decay
    for name in float_convs:
        assert groups[f'{name}.weight']['weight_decay'] == pytest.approx(1e-4), name


def test_backbone_lr_multiplier_applies_once_to_binary_weights():
    model = _Detector()
    cfg = dict(WRAPPER, paramwise_cfg=dict(norm_decay_mult=0.0,
                                           custom_keys={'backbone': dict(lr_mult=0.1)}))
    groups = _groups_by_name(model, cfg)
    binary = [f'{n}.weight' for n, m in model.named_modules() if isinstance(m, BinaryConv2d)]
    for name in binary:
        assert groups[name]['lr'] == pytest.approx(1e-4) and groups[name]['weight_decay'] == 0
    assert groups['head.weight']['lr'] == pytest.approx(1e-3)


def test_binary_decay_mult_is_configurable():
    model = _Detector()
    cfg = dict(WRAPPER, paramwise_cfg=dict(binary_decay_mult=0.5))
    groups = _groups_by_name(model, cfg)
    name = next(f'{n}.weight' for n, m in model.named_modules() if isinstance(m, BinaryConv2d))
    assert groups[name]['weight_decay'] == pytest.approx(0.5e-4)


def test_pretrained_configs_use_the_constructor_without_name_keys():
    for family in ('bireal/fcn_bireal18', 'xnorpp/fcn_xnorpp18', 'group_net/fcn_groupnet18'):
        cfg = Config.fromfile(osp.join(REPO, 'configs', f'{family}-d8_digits_pretrained.py'))
        assert cfg.optim_wrapper.constructor == 'BinaryOptimWrapperConstructor'
        assert set(cfg.optim_wrapper.paramwise_cfg.custom_keys) == {'backbone'}
