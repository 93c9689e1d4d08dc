"""The README's main job, end to end on the tiny digits set: the two-stage recipe (float stage,
then the binary stage from its weights), the PyTorch score, the bit-packed ONNX export and its
ONNX Runtime score."""
import glob
import json
import os.path as osp
import subprocess

from conftest import (PYTHON, REPO, digits_overrides, load_tool, options_to_cli,
                      run_tool_in_process, tool_env)


def run_main_job(*args):
    return subprocess.run([PYTHON, 'tools/main_job.py', *args], cwd=REPO, env=tool_env(),
                          capture_output=True, text=True, timeout=900)


def test_main_job_trains_by_the_recipe_exports_and_scores_both_backends(tiny_digits, tmp_path):
    from mmengine.config import Config
    main_job = load_tool('main_job')
    options = options_to_cli(digits_overrides(Config.fromfile(main_job.BINARY_CONFIG),
                                              tiny_digits))
    work_dir = tmp_path / 'job'
    proc = run_main_job('--data', tiny_digits, '--work-dir', str(work_dir),
                        '--max-iters', '5', '--threads', '1',
                        '--cfg-options', *options)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    with open(work_dir / 'summary.json') as f:
        summary = json.load(f)

    stage1, stage2 = summary['stages']
    # the recipe split the 5 iterations 40/60 between the float and the binary stage
    assert (stage1['iterations'], stage2['iterations']) == (2, 3)
    assert (summary['recipe'], summary['distill']) == ('two_stage', False)
    float_stage = Config.fromfile(str(work_dir / 'stage1_float' /
                                      osp.basename(main_job.BINARY_CONFIG)))
    assert float_stage.model.backbone.kernel_quantizer == 'identity'
    # stage 2 started from stage 1's weights (its training log, the first run in its folder)
    first_log = sorted(glob.glob(str(work_dir / 'stage2_binary' / '*' / '*.log')))[0]
    with open(first_log) as f:
        loads = [line for line in f if 'Load checkpoint from' in line]
    assert loads and osp.basename(stage1['checkpoint']) in loads[0]
    assert 'stage1_float' in loads[0]
    assert osp.isfile(osp.join(REPO, stage1['checkpoint']))
    trained = Config.fromfile(str(work_dir / 'stage2_binary' /
                                  osp.basename(main_job.BINARY_CONFIG)))
    assert trained.train_dataloader.dataset.data_root.startswith(tiny_digits)
    assert trained.model.type == 'FasterRCNN'  # the student is tested and exported
    # the exported model is scored with the same metrics as the PyTorch model
    for backend in ('pytorch', 'onnxruntime'):
        assert set(summary[backend]) == {'coco_mAP', 'voc_mAP50'}
        assert all(0.0 <= v <= 1.0 for v in summary[backend].values())
    for key in ('coco_mAP', 'voc_mAP50'):
        assert abs(summary['pytorch'][key] - summary['onnxruntime'][key]) <= 0.02
    sizes = summary['file_size_bytes']
    assert sizes['binary'] < sizes['float']
    assert 'main job summary' in proc.stdout


def test_main_job_names_a_missing_config(tmp_path):
    proc = run_tool_in_process('main_job', ['--config', 'configs/nope.py', '--work-dir',
                                            str(tmp_path)])
    assert proc.returncode == 2
    assert "'configs/nope.py' does not exist" in proc.stderr
