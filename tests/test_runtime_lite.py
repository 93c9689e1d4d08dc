"""``deploy/runtime_lite.py``: an exported model run with onnxruntime and numpy alone gives what
the full environment's runner (mmdet/mmseg test pipeline + ``bnn_tasks.deploy.runtime``) gives.

The main test copies ``runtime_lite.py`` and the native library into an empty folder and runs
them with a fresh virtualenv that has only onnxruntime (the pinned version) and numpy, cached
under ``~/.cache/bnn_tasks``; it is skipped, saying so, when that venv cannot be made (no
network). The image is a PNG of the exported size, so no resize is involved there and the two
sides must agree exactly; the resize (OpenCV's, as mmcv) and its numpy fallback are tested in
this environment.
"""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

import bnn_tasks  # noqa: F401
from bnn_tasks.deploy import runtime_lite
from bnn_tasks.deploy.export import export_model
from bnn_tasks.deploy.export_record import RECORD_KEY, pipeline_record
from bnn_tasks.build import build_model
from bnn_tasks.deploy.runtime import build_onnx_model
from conftest import REPO, digits_overrides, randomize_bn

cv2 = pytest.importorskip('cv2')

VENV_PACKAGES_ABSENT = ('torch', 'cv2', 'onnx', 'PIL', 'mmcv', 'bnn_tasks')


def _pinned(package: str) -> str:
    with open(osp.join(REPO, 'requirements', 'runtime.txt')) as f:
        match = re.search(rf'^{package}==(\S+)', f.read(), re.M)
    return match.group(1)


def _bare_env() -> dict:
    """No PYTHONPATH or venv of this process: the subprocess sees only its own packages."""
    return {k: v for k, v in os.environ.items()
            if k in ('PATH', 'HOME', 'LANG', 'TMPDIR', 'PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL',
                     'HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'NO_PROXY')}


@pytest.fixture(scope='session')
def bare_venv_python():
    """Python of a virtualenv holding only onnxruntime (pinned) and numpy."""
    version = _pinned('onnxruntime')
    venv = osp.expanduser(f'~/.cache/bnn_tasks/runtime_lite_venv-ort{version}')
    python = osp.join(venv, 'bin', 'python')
    check = [python, '-c', f'import numpy, onnxruntime; assert onnxruntime.__version__ == '
                           f'{version!r}']
    if not (osp.exists(python) and subprocess.run(check, env=_bare_env()).returncode == 0):
        shutil.rmtree(venv, ignore_errors=True)
        base = shutil.which('python3.11') or sys._base_executable
        for cmd in ([base, '-m', 'venv', venv],
                    [python, '-m', 'pip', 'install', '-q', f'onnxruntime=={version}', 'numpy']):
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_bare_env(),
                                  timeout=900)
            if proc.returncode:
                shutil.rmtree(venv, ignore_errors=True)
                pytest.skip(f'cannot make a virtualenv with onnxruntime=={version} and numpy '
                            f'(no network?): {" ".join(cmd[:4])} said '
                            f'{(proc.stderr or proc.stdout)[-500:]}')
    present = subprocess.run(
        [python, '-c', 'import importlib.util as u; print([m for m in '
                       f'{VENV_PACKAGES_ABSENT!r} if u.find_spec(m)])'],
        capture_output=True, text=True, env=_bare_env(), cwd=osp.dirname(venv))
    assert present.stdout.strip() == '[]', f'the bare venv has {present.stdout}'
    return python


def _tiny_config(rel, root, size):
    cfg = Config.fromfile(osp.join(REPO, 'configs', rel))
    cfg.merge_from_dict(digits_overrides(cfg, root, size=size, batch_size=1))
    return cfg


def _exported(cfg, tmp_path, size, task):
    """A random model with trained-like BN statistics, exported with its pipeline record."""
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    randomize_bn(model)
    path = str(tmp_path / f'{task}.onnx')
    record = pipeline_record(cfg, task)
    export_model(model.eval(), path, (size, size), 'binary',
                 metadata={RECORD_KEY: json.dumps(record)})
    return path


def _png_of_first_image(root, tmp_path):
    jpg = sorted(os.listdir(osp.join(root, 'images')))[0]
    png = str(tmp_path / 'digits.png')
    cv2.imwrite(png, cv2.imread(osp.join(root, 'images', jpg)))
    return png


def _full_runner(cfg, path, image_path):
    """The full environment: the config's test pipeline, data preprocessor and runtime.py."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.default_scope)
    steps = [s for s in cfg.test_dataloader.dataset.pipeline  # no annotations for this image
             if 'LoadAnnotations' not in s.type and s.type != 'CheckSegLabels']
    data = Compose(steps)(dict(img_path=image_path, img_id=0, seg_fields=[],
                               reduce_zero_label=False))
    batch = pseudo_collate([data])
    with torch.no_grad():
        batch = MODELS.build(cfg.model.data_preprocessor).eval()(batch, False)
        return build_onnx_model(cfg, path).predict(batch['inputs'], batch['data_samples'])[0]


def _detector_cfg(root, size):
    cfg = _tiny_config('bireal/retinanet_bireal18_fpn_digits.py', root, size)
    cfg.model.test_cfg.score_thr = 0.0  # untrained: keep low scores so there is something to match
    return cfg


def test_bare_venv_runs_the_detector_with_the_full_environments_boxes(
        tiny_digits, tmp_path, bare_venv_python):
    cfg = _detector_cfg(tiny_digits, 96)  # the 96 px images stay 96 px
    path = _exported(cfg, tmp_path, 96, 'detection')
    image = _png_of_first_image(tiny_digits, tmp_path)
    reference = _full_runner(cfg, path, image).pred_instances

    device = tmp_path / 'device'  # what a user copies: the module, the library, model, image
    device.mkdir()
    for src in (runtime_lite.__file__, runtime_lite.library_path(), path, image):
        shutil.copy(src, device)
    proc = subprocess.run([bare_venv_python, 'runtime_lite.py', 'detection.onnx', 'digits.png',
                           '--out', 'dets.json'], cwd=device, env=_bare_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dets = json.loads((device / 'dets.json').read_text())['detections']
    assert len(dets) == len(reference) > 0
    np.testing.assert_allclose([d['box'] for d in dets], reference.bboxes.numpy(), atol=1e-4)
    np.testing.assert_allclose([d['score'] for d in dets], reference.scores.numpy(), atol=1e-6)
    assert [d['label'] for d in dets] == reference.labels.tolist()
    assert {d['class'] for d in dets} <= set('0123456789')


def test_lite_detector_resizes_and_rescales_as_the_test_pipeline(tiny_digits, tmp_path):
    cfg = _detector_cfg(tiny_digits, 128)  # 96 px images resized to 128 px by the pipeline
    path = _exported(cfg, tmp_path, 128, 'detection')
    image = _png_of_first_image(tiny_digits, tmp_path)
    reference = _full_runner(cfg, path, image).pred_instances
    assert reference.bboxes.numel() > 0
    model = runtime_lite.Model(path)
    result = model(image)
    np.testing.assert_allclose(result.boxes, reference.bboxes.numpy(), atol=1e-4)
    np.testing.assert_array_equal(result.labels, reference.labels.numpy())
    assert_batch_gives_single_results(model, image)


def assert_batch_gives_single_results(model, image):
    """``Model.predict`` on images of three sizes (one ONNX Runtime run) gives each image's
    own result."""
    img = runtime_lite.read_image(image)
    images = [img, img[:72, :60], np.ascontiguousarray(img[::-1])]
    for together, alone in zip(model.predict(images), map(model, images)):
        assert type(together) is type(alone)
        for field in together._fields:
            np.testing.assert_array_equal(getattr(together, field), getattr(alone, field))


def test_lite_segmentor_matches_the_full_runner(tiny_digits, tmp_path):
    cfg = _tiny_config('bireal/fcn_bireal18-d8_digits.py', tiny_digits, 128)
    path = _exported(cfg, tmp_path, 128, 'segmentation')
    image = _png_of_first_image(tiny_digits, tmp_path)
    reference = _full_runner(cfg, path, image)
    model = runtime_lite.Model(path)
    result = model(image)
    assert result.labels.shape == (96, 96)
    np.testing.assert_allclose(result.logits, reference.seg_logits.data.numpy(), atol=1e-4)
    assert (result.labels == reference.pred_sem_seg.data[0].numpy()).mean() >= 0.999
    assert_batch_gives_single_results(model, image)


def test_model_without_a_pipeline_record_is_a_clear_error(tmp_path):
    from torch import nn
    path = str(tmp_path / 'plain.onnx')
    export_model(nn.Sequential(nn.Conv2d(3, 4, 3)), path, (8, 8), 'binary')
    with pytest.raises(runtime_lite.PipelineError, match='tools/deploy.py'):
        runtime_lite.Model(path)


@pytest.mark.parametrize('hw,new_hw', [((37, 53), (64, 80)), ((96, 96), (128, 128)),
                                       ((50, 70), (20, 30))])
def test_numpy_resize_is_within_a_grey_level_of_opencv(hw, new_hw):
    img = np.random.default_rng(0).integers(0, 256, hw + (3,), dtype=np.uint8)
    ours = runtime_lite.resize_image(img, new_hw[1], new_hw[0], use_cv2=False)
    theirs = cv2.resize(img, new_hw[::-1], interpolation=cv2.INTER_LINEAR)
    assert np.abs(ours.astype(int) - theirs).max() <= 1


@pytest.mark.parametrize('wh', [(96, 96), (640, 427), (300, 1000), (17, 5)])
@pytest.mark.parametrize('keep_ratio', [True, False])
def test_rescaled_size_is_mmcvs(wh, keep_ratio):
    import mmcv
    scale = (256, 192)
    expected = mmcv.rescale_size(wh, scale) if keep_ratio else scale
    assert runtime_lite.rescaled_size(*wh, scale, keep_ratio) == tuple(expected)


@pytest.mark.parametrize('channels,dtype', [(1, np.uint8), (3, np.uint8), (4, np.uint8),
                                            (3, np.uint16)])
def test_png_decoder_reads_what_opencv_writes(tmp_path, channels, dtype):
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.integers(0, 3, (23, 31, channels)), axis=1)  # exercises every filter
    img = (smooth * (257 if dtype == np.uint16 else 1) % np.iinfo(dtype).max).astype(dtype)
    path = str(tmp_path / 'img.png')
    cv2.imwrite(path, img[..., 0] if channels == 1 else img)
    decoded = runtime_lite.decode_png(open(path, 'rb').read())
    expected = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    expected = expected[..., None] if expected.ndim == 2 else expected
    if dtype == np.uint16:
        expected = (expected >> 8).astype(np.uint8)
    if channels >= 3:  # OpenCV returns BGR(A)
        expected = np.concatenate([expected[..., 2::-1], expected[..., 3:]], axis=2)
    np.testing.assert_array_equal(decoded, expected)
