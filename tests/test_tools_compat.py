"""bnn_tasks.compat: each known breakage of the pinned stack is fixed, and only that."""
import io
import pickle

import pytest
import torch

import bnn_tasks.compat as compat


def test_all_fixes_applied():
    assert all(v is True for v in compat.APPLIED.values()), compat.APPLIED
    assert set(compat.APPLIED) == {'atomic_checkpoint_writes', 'checkpoint_safe_globals',
                                   'cpu_distributed_init', 'ssd_head_loss_cls',
                                   'seg_class_weight_ignore', 'mmcv_ops_bf16',
                                   'config_format_cache'}
    assert compat.apply_all() == compat.APPLIED  # idempotent


def test_ssd_head_predicts():
    from mmdet.models.dense_heads import SSDHead
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    from mmengine.config import ConfigDict
    head = SSDHead(num_classes=3, in_channels=(8, 8),
                   anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False,
                                         input_size=64, strides=[16, 32],
                                         min_sizes=[16, 32], max_sizes=[32, 48],
                                         ratios=[[2], [2]]),
                   test_cfg=ConfigDict(nms_pre=100, nms=dict(type='nms', iou_threshold=0.45),
                                       min_bbox_size=0, score_thr=0.0, max_per_img=10))
    assert head.loss_cls is None  # the attribute the base class's predict path reads
    feats = (torch.rand(1, 8, 4, 4), torch.rand(1, 8, 2, 2))
    meta = [dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0))]
    from mmdet.structures import DetDataSample
    results = head.predict(feats, [DetDataSample(metainfo=meta[0])], rescale=False)
    assert len(results) == 1 and len(results[0].bboxes) <= 10
    # softmax scores (SSD does not use sigmoid): all in [0, 1]
    assert ((results[0].scores >= 0) & (results[0].scores <= 1)).all()


def test_mmengine_checkpoint_loads_weights_only(tmp_path):
    import numpy as np
    from mmengine.logging import HistoryBuffer, MessageHub
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(0.5))
    ckpt = dict(meta=dict(iter=3, seed=np.int64(7), arr=np.arange(3, dtype=np.float32)),
                state_dict={'w': torch.ones(2)}, message_hub=hub.state_dict())
    path = tmp_path / 'ckpt.pth'
    torch.save(ckpt, path)
    loaded = torch.load(path)  # torch's default: weights_only=True
    assert loaded['meta']['iter'] == 3 and int(loaded['meta']['seed']) == 7
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == pytest.approx(1.0)


class _Evil:
    # getattr on an allow-listed class, walking to something that is not a statistic
    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_arbitrary_globals_stay_forbidden(tmp_path):
    path = tmp_path / 'evil.pth'
    buf = io.BytesIO()
    pickle.dump({'x': _Evil()}, buf, protocol=2)
    # a torch zip file whose pickle asks for getattr(HistoryBuffer, '__init__')
    torch.save({'x': 1}, path)
    import zipfile
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        files = {n: z.read(n) for n in names}
    pkl = [n for n in names if n.endswith('data.pkl')][0]
    files[pkl] = buf.getvalue()
    with zipfile.ZipFile(path, 'w') as z:
        for n, data in files.items():
            z.writestr(n, data)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_cpu_distributed_init_skips_cuda(monkeypatch):
    from mmengine.dist import utils as dist_utils
    assert getattr(dist_utils._init_dist_pytorch, '_bnn_tasks_cpu_fix', False)
    if torch.cuda.is_available():
        pytest.skip('CUDA machine: the original mmengine path runs')
    calls = []
    monkeypatch.setattr(torch.distributed, 'init_process_group',
                        lambda **kw: calls.append(kw))
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('LOCAL_RANK', '0')
    dist_utils._init_dist_pytorch('gloo')
    assert calls == [dict(backend='gloo', rank=0, world_size=1)]
    with pytest.raises(RuntimeError, match='nccl needs CUDA'):
        dist_utils._init_dist_pytorch('nccl')


def test_seg_class_weight_with_ignored_pixels():
    import torch.nn.functional as F
    from mmseg.models.losses import CrossEntropyLoss
    weights = [0.1, 1.0, 2.0]
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    label = torch.randint(0, 3, (2, 4, 4))
    label[0, 0, :] = 255  # padding
    for avg_non_ignore in (False, True):
        loss = CrossEntropyLoss(class_weight=weights, avg_non_ignore=avg_non_ignore)
        got = loss(logits, label, ignore_index=255)
        per_pixel = F.cross_entropy(logits, label, weight=torch.tensor(weights),
                                    reduction='none', ignore_index=255)
        valid = label != 255
        denom = torch.tensor(weights)[label[valid]].sum()
        if not avg_non_ignore:
            denom = denom + (~valid).sum()  # an ignored pixel counts 1, as unweighted
        assert torch.isfinite(got) and torch.allclose(got, per_pixel.sum() / denom)


def test_config_text_is_formatted_once_per_content_and_unchanged(monkeypatch):
    from mmengine.config import Config
    from mmengine.config import config as config_module
    from yapf.yapflib.yapf_api import FormatCode

    from bnn_tasks.compat.config_format_cache import _cached
    cfg = Config(dict(model=dict(type='FCN', backbone=dict(depth=18)), lr=0.1))
    monkeypatch.setattr(config_module, 'FormatCode', FormatCode)
    reference = cfg.pretty_text  # yapf itself, uncached
    calls = []

    def counting_format_code(text, **kwargs):
        calls.append(text)
        return FormatCode(text, **kwargs)

    monkeypatch.setattr(config_module, 'FormatCode', _cached(counting_format_code))
    assert cfg.pretty_text == reference and cfg.pretty_text == reference
    assert len(calls) == 1  # the second read is remembered
    cfg.lr = 0.2  # a changed config is formatted afresh
    assert 'lr = 0.2' in cfg.pretty_text and len(calls) == 2
