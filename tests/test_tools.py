"""tools/train.py, tools/test.py, tools/dist_train.sh: runs, resume, and bad-input messages."""
import glob
import json
import os
import os.path as osp
import shutil
import socket
import subprocess

import cv2
import pytest
import torch
from conftest import PYTHON, REPO, digits_overrides, load_tool, options_to_cli, tool_env
from mmengine.config import Config

train_tool = load_tool('train')

DET = osp.join(REPO, 'configs', 'bireal', 'faster-rcnn_bireal18_fpn_digits.py')
DET_FP = osp.join(REPO, 'configs', 'baselines', 'faster-rcnn_r18_fpn_digits.py')
SEG = osp.join(REPO, 'configs', 'baselines', 'fcn_r18-d8_digits.py')


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(tmp_path, monkeypatch):
    """Tools called without --work-dir write work_dirs/<config> under the current folder: keep
    it out of the repository (configs and data are passed as absolute paths)."""
    monkeypatch.chdir(tmp_path)


def tiny_opts(config, root, **extra):
    opts = digits_overrides(Config.fromfile(config), root)
    opts.update({'default_hooks.logger.interval': 1})
    opts.update(extra)
    return opts


def run_inproc(tool, argv, capsys):
    """Run tools/{train,test}.py's main through run_tool; returns (exit code, stderr)."""
    if tool == 'train':
        code = train_tool.run_tool(train_tool.main, argv)
    else:
        test_tool = load_tool('test')
        code = test_tool.run_tool(test_tool.main, argv)
    return code, capsys.readouterr().err


def run_cli(args, timeout=300, **kw):
    return subprocess.run(args, capture_output=True, text=True, env=tool_env(), cwd=REPO,
                          timeout=timeout, **kw)


@pytest.fixture(scope='module')
def trained(tiny_digits, tmp_path_factory):
    """A 2-iteration Bi-Real Faster R-CNN run (checkpoint + work dir) on the tiny set."""
    work = str(tmp_path_factory.mktemp('trained'))
    opts = tiny_opts(DET, tiny_digits, **{'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                                          'default_hooks.checkpoint.interval': 2})
    code = train_tool.run_tool(train_tool.main,
                               [DET, '--work-dir', work, '--cfg-options'] + options_to_cli(opts))
    assert code == 0
    return work


# ----------------------------------------------------------------------------- happy paths
def test_train_then_test_writes_metrics_predictions_and_drawings(trained, tiny_digits, tmp_path,
                                                                 capsys):
    ckpt = osp.join(trained, 'iter_2.pth')
    assert osp.isfile(ckpt)
    show, out = str(tmp_path / 'show'), str(tmp_path / 'preds.pkl')
    opts = options_to_cli(tiny_opts(DET, tiny_digits))
    code, err = run_inproc('test', [DET, ckpt, '--work-dir', str(tmp_path), '--out', out,
                                    '--show-dir', show, '--cfg-options'] + opts, capsys)
    assert code == 0, err
    assert osp.isfile(out) and osp.isfile(tmp_path / 'test_metrics.json')
    drawn = glob.glob(osp.join(show, '*.jpg'))
    assert len(drawn) == 4  # one per val image
    # ground truth (left) and predicted boxes (right) side by side
    assert cv2.imread(drawn[0]).shape[:2] == (96, 2 * 96)


def test_segmentation_train_and_test_dispatch_on_default_scope(tiny_digits, tmp_path, capsys):
    opts = tiny_opts(SEG, tiny_digits, **{'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1,
                                          'default_hooks.checkpoint.interval': 1})
    code, err = run_inproc('train', [SEG, '--work-dir', str(tmp_path), '--cfg-options']
                           + options_to_cli(opts), capsys)
    assert code == 0, err
    show = str(tmp_path / 'show')
    code, err = run_inproc('test', [SEG, str(tmp_path / 'iter_1.pth'), '--work-dir',
                                    str(tmp_path), '--show-dir', show, '--out',
                                    str(tmp_path / 'pred'), '--cfg-options']
                           + options_to_cli(tiny_opts(SEG, tiny_digits)), capsys)
    assert code == 0, err
    drawn = glob.glob(osp.join(show, '**', '*.png'), recursive=True)
    assert drawn, 'no segmentation drawings written'
    # ground truth and prediction side by side: twice the image width
    assert cv2.imread(drawn[0]).shape[1] == 2 * 96
    assert len(glob.glob(osp.join(tmp_path, 'pred', '*.png'))) == 4


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_two_stage_in_two_gloo_processes_on_one_budget_clock(tiny_digits, tmp_path):
    """Both stages of the recipe in 2 gloo processes (tools/dist_train.sh): stage 2's runner
    reuses the group stage 1 left up (a second init, or a torn-down group, would fail or hang),
    and with a time budget that re-fits the schedule both processes take its decisions from one
    clock (rank 0's, broadcast every iteration) or they would hang."""
    opts = tiny_opts(DET, tiny_digits, **{'train_dataloader.batch_size': 1})
    env = tool_env()
    env.update(PORT=str(_free_port()), PYTHON=PYTHON)
    env.pop('OMP_NUM_THREADS', None)  # the script's: 1 thread a process, not a worker's share
    # a refit needs 10 timed iterations: this run's 2 + 3 keep their length
    run = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), DET, '2',
                          '--work-dir', str(tmp_path), '--two-stage', '--max-iters', '5',
                          '--budget-minutes', '10', '--refit-to-budget',
                          '--cfg-options'] + options_to_cli(opts),
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert "'backend': 'gloo'" in log and 'Distributed training: True' in log
    with open(tmp_path / 'train_result.json') as f:
        result = json.load(f)
    assert [s['iterations'] for s in result['stages'].values()] == [2, 3]
    assert osp.isfile(result['checkpoint']) and 'stage2_binary' in result['checkpoint']
    assert osp.isfile(tmp_path / 'stage1_float' / osp.basename(DET))
    for stage in ('stage1_float', 'stage2_binary'):
        assert osp.isfile(tmp_path / stage / 'time_budget.json')  # written by rank 0


# ---------------------------------------------------------------------------- bad input
def _copy_digits(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return str(dst)


def test_missing_data_root_is_named(tiny_digits, capsys):
    opts = tiny_opts(DET, tiny_digits)
    opts['train_dataloader.dataset.data_root'] = '/nonexistent/digits/'
    code, err = run_inproc('train', [DET, '--cfg-options'] + options_to_cli(opts), capsys)
    assert code == 2
    assert "'/nonexistent/digits/'" in err and 'train_dataloader.dataset.data_root' in err
    # the built-in set is generated, so the error says how
    assert 'python tools/make_digits_dataset.py --out /nonexistent/digits/' in err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1


def test_missing_data_root_of_another_set_points_at_its_layout():
    from bnn_tasks.datasets.errors import DatasetError
    from bnn_tasks.datasets.preflight import check_dataset_cfg
    with pytest.raises(DatasetError) as error:
        check_dataset_cfg(dict(type='VOCDataset', data_root='/nonexistent/VOCdevkit/'),
                          'val_dataloader.dataset')
    message = str(error.value)
    assert "'/nonexistent/VOCdevkit/'" in message and 'val_dataloader.dataset.data_root' in message
    assert 'docs/datasets.md' in message and 'make_digits_dataset' not in message


def test_missing_annotation_and_split_files_are_named(tiny_digits, tmp_path, capsys):
    root = _copy_digits(tiny_digits, tmp_path / 'd')
    os.remove(osp.join(root, 'annotations', 'instances_train.json'))
    code, err = run_inproc('train', [DET, '--cfg-options']
                           + options_to_cli(tiny_opts(DET, root)), capsys)
    assert code == 2 and 'instances_train.json' in err and 'does not exist' in err
    os.remove(osp.join(root, 'splits', 'train.txt'))
    code, err = run_inproc('train', [SEG, '--cfg-options']
                           + options_to_cli(tiny_opts(SEG, root)), capsys)
    assert code == 2 and 'split file' in err and 'train.txt' in err


def test_unparsable_annotation_file_is_named(tiny_digits, tmp_path, capsys):
    root = _copy_digits(tiny_digits, tmp_path / 'd')
    with open(osp.join(root, 'annotations', 'instances_val.json'), 'w') as f:
        f.write('{"images": [')
    code, err = run_inproc('test', [DET, '/unused.pth', '--cfg-options']
                           + options_to_cli(tiny_opts(DET, root)), capsys)
    assert code == 2 and 'instances_val.json' in err and 'not valid JSON' in err


def test_unknown_cfg_option_key_is_named(capsys):
    code, err = run_inproc('train', [DET, '--cfg-options', 'model.backbone.dept=18'], capsys)
    assert code == 2 and "'model.backbone.dept'" in err
    code, err = run_inproc('train', [DET, '--cfg-options', 'optim_wraper.lr=1'], capsys)
    assert code == 2 and "'optim_wraper'" in err


def test_refit_to_budget_needs_a_budget(capsys):
    code, err = run_inproc('train', [DET, '--refit-to-budget'], capsys)
    assert code == 2 and '--refit-to-budget needs --budget-minutes' in err


def test_distill_options_without_distillation_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_tool.parse_args([DET, '--two-stage', '--no-distill',
                               '--distill-options', 'feat_loss=relative'])
    assert exit_info.value.code == 2
    assert '--distill-options configures the distillation' in capsys.readouterr().err


def test_amp_trains_in_bf16_where_the_cpu_has_it_and_is_refused_where_not(
        tiny_digits, tmp_path, capsys, monkeypatch):
    from bnn_tasks.engine import mixed_precision
    opts = options_to_cli(tiny_opts(DET, tiny_digits, **{'train_cfg.max_iters': 1,
                                                         'train_cfg.val_interval': 1}))
    monkeypatch.setattr(mixed_precision, 'has_native_bf16', lambda: False)
    code, err = run_inproc('train', [DET, '--amp', '--work-dir', str(tmp_path / 'no'),
                                     '--cfg-options'] + opts, capsys)
    assert code == 2 and 'faster-rcnn_bireal18_fpn_digits.py: --amp' in err
    assert 'avx512_bf16 or amx_bf16' in err
    # where bf16 is native (any CPU runs it, emulated ones slowly): the run trains with it
    monkeypatch.setattr(mixed_precision, 'has_native_bf16', lambda: True)
    work = tmp_path / 'bf16'
    code, err = run_inproc('train', [DET, '--amp', '--work-dir', str(work), '--cfg-options']
                           + opts, capsys)
    assert code == 0, err
    assert Config.fromfile(str(work / osp.basename(DET))).optim_wrapper.type == \
        'CPUAmpOptimWrapper'
    assert json.load(open(work / 'train_result.json'))['iterations'] == 1


def test_truncated_checkpoint_is_refused(trained, tiny_digits, tmp_path, capsys):
    data = open(osp.join(trained, 'iter_2.pth'), 'rb').read()
    bad = tmp_path / 'truncated.pth'
    bad.write_bytes(data[:len(data) // 2])
    code, err = run_inproc('test', [DET, str(bad), '--cfg-options']
                           + options_to_cli(tiny_opts(DET, tiny_digits)), capsys)
    assert code == 2 and 'truncated.pth' in err and 'cannot be read' in err


def test_checkpoint_with_a_pickled_callable_is_refused_by_name(trained, tiny_digits, tmp_path,
                                                               capsys):
    ckpt = torch.load(osp.join(trained, 'iter_2.pth'), map_location='cpu')
    ckpt['meta']['on_load'] = os.system  # pickled as a reference to posix.system
    evil = tmp_path / 'evil.pth'
    torch.save(ckpt, evil)
    for tool, argv in (('test', [DET, str(evil)]),
                       ('train', [DET, '--work-dir', str(tmp_path), '--resume', str(evil)])):
        code, err = run_inproc(tool, argv + ['--cfg-options']
                               + options_to_cli(tiny_opts(DET, tiny_digits)), capsys)
        assert code == 2 and 'evil.pth' in err and 'posix.system' in err, err
        assert 'for safety' in err and 'truncated' not in err


def test_checkpoint_of_another_architecture_is_refused(trained, tiny_digits, capsys):
    # a Bi-Real checkpoint into the float ResNet-18 twin: keys differ
    code, err = run_inproc('test', [DET_FP, osp.join(trained, 'iter_2.pth'), '--cfg-options']
                           + options_to_cli(tiny_opts(DET_FP, tiny_digits)), capsys)
    assert code == 2 and 'does not fit the model' in err and 'iter_2.pth' in err
    assert 'backbone.layer1.0.conv1.weight' in err or 'unit1' in err
    # same keys, other shapes: a 20-class head
    opts = tiny_opts(DET, tiny_digits)
    opts['model.roi_head.bbox_head.num_classes'] = 20
    code, err = run_inproc('test', [DET, osp.join(trained, 'iter_2.pth'), '--cfg-options']
                           + options_to_cli(opts), capsys)
    assert code == 2 and 'other shapes' in err and 'fc_cls' in err


def _rewrite_masks(root, fn):
    for path in glob.glob(osp.join(root, 'masks', '*.png')):
        mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        cv2.imwrite(path, fn(mask))


def test_segmentation_labels_out_of_range_are_named(tiny_digits, tmp_path, capsys):
    root = _copy_digits(tiny_digits, tmp_path / 'd')

    def add_bad_label(m):
        m = m.copy()
        m[0, 0] = 42
        return m
    _rewrite_masks(root, add_bad_label)
    opts = tiny_opts(SEG, root, **{'train_cfg.max_iters': 1})
    code, err = run_inproc('train', [SEG, '--work-dir', str(tmp_path / 'w'), '--cfg-options']
                           + options_to_cli(opts), capsys)
    assert code == 2 and '[42]' in err and '.png' in err and 'outside 0..10' in err


def test_segmentation_mask_size_mismatch_is_named(tiny_digits, tmp_path, capsys):
    root = _copy_digits(tiny_digits, tmp_path / 'd')
    _rewrite_masks(root, lambda m: cv2.resize(m, (50, 40), interpolation=cv2.INTER_NEAREST))
    opts = tiny_opts(SEG, root, **{'train_cfg.max_iters': 1})
    code, err = run_inproc('train', [SEG, '--work-dir', str(tmp_path / 'w'), '--cfg-options']
                           + options_to_cli(opts), capsys)
    assert code == 2 and 'mask is 50x40' in err and '96x96' in err


def test_bad_input_cli_prints_one_line_and_debug_shows_traceback(tiny_digits, tmp_path):
    base = [PYTHON, osp.join(REPO, 'tools', 'train.py'), DET, '--work-dir', str(tmp_path),
            '--cfg-options', 'train_dataloader.dataset.data_root=/nonexistent/']
    run = run_cli(base)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith('error: ')
    assert 'Traceback' not in run.stderr
    # --debug: run_tool lets the error through (the interpreter prints its traceback)
    from bnn_tasks.cli import run_tool
    from bnn_tasks.datasets.errors import DatasetError
    with pytest.raises(DatasetError, match='/nonexistent/'):
        run_tool(load_tool('train').main, base[2:] + ['--debug'])


def test_onnx_checkpoint_dispatches_to_runtime(tmp_path, capsys, monkeypatch):
    import sys
    import types
    calls = []
    fake = types.ModuleType('bnn_tasks.deploy.runtime')
    fake.run_onnx_test = lambda cfg, path, threads: calls.append((cfg.default_scope, path)) or {}
    monkeypatch.setitem(sys.modules, 'bnn_tasks.deploy.runtime', fake)
    model = tmp_path / 'm.onnx'
    model.write_bytes(b'onnx')
    test_tool = load_tool('test')
    opts = {'test_dataloader.dataset.data_root': str(tmp_path)}
    os.makedirs(tmp_path / 'images')
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'instances_val.json').write_text('{}')
    opts['test_evaluator.0.ann_file'] = str(tmp_path / 'annotations' / 'instances_val.json')
    code = test_tool.run_tool(test_tool.main, [DET, str(model), '--work-dir', str(tmp_path),
                                               '--cfg-options'] + options_to_cli(opts))
    assert code == 0, capsys.readouterr().err
    assert calls == [('mmdet', str(model))]
    assert json.loads((tmp_path / 'test_result_onnx.json').read_text())['backend'] == \
        'onnxruntime'
