"""Budgeted schedules keep the config's recipe: warm-up, then a decay that ends at max_iters."""
import os.path as osp

import pytest
from mmengine.config import Config

from bnn_tasks.engine import add_time_budget, fit_schedule

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _cfg(name):
    return Config.fromfile(osp.join(REPO, 'configs', name))


@pytest.mark.parametrize('name', ['bireal/faster-rcnn_bireal18_fpn_digits.py',
                                  'group_net/fcn_groupnet18-d8_digits.py'])
def test_schedule_is_refitted_not_cut(name):
    cfg = fit_schedule(_cfg(name), 1000, val_interval=250)
    assert cfg.train_cfg.max_iters == 1000 and cfg.train_cfg.val_interval == 250
    warmup, decay = cfg.param_scheduler
    assert warmup.begin == 0 and warmup.end == 100  # capped at a tenth of the run
    assert decay.begin == 100 and decay.end == 1000  # the decay still reaches its floor
    assert cfg.default_hooks.checkpoint.interval <= 250


def test_longer_run_keeps_warmup_and_stretches_decay():
    cfg = _cfg('bireal/faster-rcnn_bireal18_fpn_digits.py')
    old_warmup = cfg.param_scheduler[0].end
    fit_schedule(cfg, 12000)
    assert cfg.param_scheduler[0].end == old_warmup
    assert cfg.param_scheduler[1].end == 12000
    assert cfg.train_cfg.val_interval == 12000  # validate at the end only


def test_val_interval_zero_means_no_validation_inside_training():
    cfg = fit_schedule(_cfg('bireal/faster-rcnn_bireal18_fpn_digits.py'), 500, val_interval=0)
    # mmengine's loop validates at iteration % interval == 0 or at max_iters, from val_begin on
    assert cfg.train_cfg.val_begin > 500
    cfg = fit_schedule(cfg, 500, val_interval=100)  # and back
    assert 'val_begin' not in cfg.train_cfg and cfg.train_cfg.val_interval == 100
    with pytest.raises(ValueError, match='val_interval'):
        fit_schedule(cfg, 500, val_interval=-1)


def test_epoch_based_config_is_refused():
    cfg = _cfg('bireal/faster-rcnn_bireal18_fpn_voc0712.py')
    with pytest.raises(ValueError, match='iteration-based'):
        fit_schedule(cfg, 100)


def test_time_budget_hook_is_added_once():
    cfg = _cfg('bireal/faster-rcnn_bireal18_fpn_digits.py')
    add_time_budget(cfg, 5)
    add_time_budget(cfg, 7)
    budgets = [h for h in cfg.custom_hooks if h['type'] == 'TrainTimeBudgetHook']
    assert budgets == [dict(type='TrainTimeBudgetHook', budget_minutes=7)]
    with pytest.raises(ValueError):
        add_time_budget(cfg, 0)
