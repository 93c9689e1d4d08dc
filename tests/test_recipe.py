"""The float-to-binary recipe: float_stage for every family, both stages of
``tools/train.py --two-stage`` on the tiny set, and the frozen distillation teacher."""
import glob
import json
import os.path as osp

import pytest
import torch
from conftest import REPO, digits_overrides, load_tool, options_to_cli
from mmengine.config import Config

from bnn_tasks import jobs
from bnn_tasks.binarizers import HardTanh, sign
from bnn_tasks.engine.recipe import RecipeError, binary_stage, float_stage
from bnn_tasks.layers.binary_conv import BinaryConv2d

train_tool = load_tool('train')

RETINANET = osp.join(REPO, 'configs', 'bireal', 'retinanet_bireal18_fpn_digits.py')
FCN = osp.join(REPO, 'configs', 'bireal', 'fcn_bireal18-d8_digits.py')
BNH = osp.join(REPO, 'configs', 'bireal', 'faster-rcnn_bireal18-bnh_fpn_digits.py')
FLOAT_FRCNN = osp.join(REPO, 'configs', 'baselines', 'faster-rcnn_r18_fpn_digits.py')
FLOAT_FCN = osp.join(REPO, 'configs', 'baselines', 'fcn_r18-d8_digits.py')

BACKBONES = {
    'bireal': dict(type='BiRealResNet', depth=18),
    'group_net': dict(type='GroupNetResNet', depth=18, num_bases=2),
    'xnorpp': dict(type='XNORPPResNet', depth=18),
    'timm': dict(type='BinaryTimmBackbone', model_name='resnet18', method='bireal',
                 out_indices=(1, 2, 3, 4)),
}


def _binary_convs(module):
    return [m for m in module.modules() if isinstance(m, BinaryConv2d)]


def _is_float_conv(conv):
    return isinstance(conv.input_quantizer, HardTanh) and not conv.kernel_quantizer.is_sign


@pytest.mark.parametrize('family', sorted(BACKBONES))
def test_float_stage_makes_every_family_float_with_the_same_parameter_names(family):
    from mmdet.registry import MODELS
    cfg = Config(dict(model=dict(type='RetinaNet', backbone=BACKBONES[family])))
    binary = MODELS.build(cfg.model.backbone)
    fp = MODELS.build(float_stage(cfg).model.backbone)
    assert _binary_convs(binary) and not any(_is_float_conv(c) for c in _binary_convs(binary))
    assert _binary_convs(fp) and all(_is_float_conv(c) for c in _binary_convs(fp))
    assert list(binary.state_dict()) == list(fp.state_dict())
    assert cfg.model.backbone.get('kernel_quantizer') is None  # the input is left alone


@pytest.mark.parametrize('family', sorted(BACKBONES))
def test_binary_activation_float_stage_floats_only_the_weights(family):
    from mmdet.registry import MODELS
    cfg = Config(dict(model=dict(type='RetinaNet', backbone=BACKBONES[family]),
                      optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3))))
    binary = _binary_convs(MODELS.build(cfg.model.backbone))
    fp = _binary_convs(MODELS.build(float_stage(cfg, activations='binary').model.backbone))
    assert fp and len(fp) == len(binary)
    for b, f in zip(binary, fp):
        assert type(f.input_quantizer) is type(b.input_quantizer)  # noqa: E721
        assert not isinstance(f.input_quantizer, HardTanh)
        assert not f.kernel_quantizer.is_sign
    # the distillation teacher of stage 2 is that same network
    teacher = binary_stage(cfg, 'stage1.pth', stage1_activations='binary').model.teacher
    assert teacher.backbone == float_stage(cfg, activations='binary').model.backbone
    with pytest.raises(RecipeError, match="'relu'"):
        float_stage(cfg, activations='relu')


def _effective_weights(conv):
    """What the conv multiplies its input by, per output channel: weights x analytic scale."""
    weights, scale = conv.binarized_weight()
    return weights if scale is None else weights * scale.view(-1, 1, 1, 1)


@pytest.mark.parametrize('family', sorted(BACKBONES))
def test_float_stage_weights_have_the_magnitude_of_the_binary_weights(family):
    """Stage 2 loads stage 1's latent weights: each conv's effective weights must keep their
    per-channel mean magnitude when binarized, or a learned output scale fitted in stage 1
    (XNOR-Net++'s alpha) multiplies the conv's output 35-120x at binarization (unscaled signs
    against raw latent weights of ~0.01-0.03)."""
    from mmdet.registry import MODELS
    cfg = Config(dict(model=dict(type='RetinaNet', backbone=BACKBONES[family])))
    binary = MODELS.build(cfg.model.backbone)
    fp = MODELS.build(float_stage(cfg).model.backbone)
    fp.load_state_dict(binary.state_dict())
    pairs = list(zip(_binary_convs(binary), _binary_convs(fp)))
    assert pairs
    for b, f in pairs:
        magnitude = _effective_weights(b).abs().flatten(1).mean(1)
        relaxed = _effective_weights(f)
        torch.testing.assert_close(relaxed.abs().flatten(1).mean(1), magnitude)
        # and the relaxation keeps the signs it will binarize to
        assert torch.equal(sign(relaxed), sign(_effective_weights(b)))


def test_binary_stage_trains_the_pretrained_backbone_at_the_full_rate():
    """A *_pretrained config slows its backbone for the fresh heads of stage 1; stage 2 starts
    from a network trained end to end and re-fits the backbone most, so it drops lr_mult."""
    path = osp.join(REPO, 'configs', 'xnorpp', 'fcn_xnorpp18-d8_digits_pretrained.py')
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['backbone'] == dict(lr_mult=0.1)
    assert float_stage(cfg, path).optim_wrapper == cfg.optim_wrapper  # stage 1 keeps it
    second = binary_stage(cfg, 'stage1.pth', path, distill=False)
    assert 'backbone' not in second.optim_wrapper.paramwise_cfg.custom_keys
    assert second.optim_wrapper.paramwise_cfg.norm_decay_mult == 0.0  # decay rules stay
    assert second.optim_wrapper.optimizer.lr == pytest.approx(cfg.optim_wrapper.optimizer.lr / 2)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['backbone'] == dict(lr_mult=0.1)
    faster = binary_stage(cfg, 'stage1.pth', path, distill=False, lr_factor=1.0)
    assert faster.optim_wrapper.optimizer.lr == pytest.approx(cfg.optim_wrapper.optimizer.lr)
    with pytest.raises(RecipeError, match="learning-rate factor must be > 0, got 0"):
        binary_stage(cfg, 'stage1.pth', path, distill=False, lr_factor=0)


def test_float_stage_refuses_float_configs():
    with pytest.raises(RecipeError, match='already a float network'):
        float_stage(Config.fromfile(FLOAT_FRCNN), FLOAT_FRCNN)
    with pytest.raises(RecipeError, match='float stage'):
        float_stage(float_stage(Config.fromfile(RETINANET)))


@pytest.mark.skipif(not osp.isfile(BNH), reason='binary neck/head configs not present')
def test_float_stage_reaches_binary_necks_and_heads():
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    fp = MODELS.build(float_stage(Config.fromfile(BNH), BNH).model)
    convs = _binary_convs(fp)
    assert len(convs) > len(_binary_convs(fp.backbone))  # neck/head convs are reached too
    assert all(_is_float_conv(c) for c in convs)


def _two_stage(config, root, work, extra=(), options=None):
    opts = digits_overrides(Config.fromfile(config), root)
    opts['default_hooks.logger.interval'] = 1
    opts.update(options or {})
    code = train_tool.run_tool(train_tool.main, [
        config, '--two-stage', '--max-iters', '4', '--first-stage-fraction', '0.5',
        '--val-interval', '0', '--work-dir', work, *extra,
        '--cfg-options', *options_to_cli(opts)])
    assert code == 0
    with open(osp.join(work, 'train_result.json')) as f:
        return json.load(f)


def _logged_losses(stage_dir):
    rows = []
    for path in glob.glob(osp.join(stage_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if 'loss' in r]


def _assert_distilled(stage_dir):
    rows = _logged_losses(stage_dir)
    assert rows, f'no training losses logged in {stage_dir}'
    for name in ('loss_distill_feat', 'loss_distill_logits'):
        assert all(name in r and r[name] > 0 for r in rows), (name, rows)


def _assert_stage2_loaded_stage1(work, result):
    log = ''.join(open(p).read() for p in glob.glob(osp.join(work, 'stage2_binary', '*', '*.log')))
    stage1_ckpt = result['stages']['stage1_float']['checkpoint']
    assert f'Load checkpoint from {stage1_ckpt}' in log
    assert 'distillation teacher loaded from ' + stage1_ckpt in log


def test_two_stage_detection_loads_stage1_and_distils(tiny_digits, tmp_path):
    from mmengine.registry import init_default_scope
    from bnn_tasks.cli import build_runner
    work = str(tmp_path)
    result = _two_stage(RETINANET, tiny_digits, work)
    first, second = result['stages']['stage1_float'], result['stages']['stage2_binary']
    assert first['iterations'] == 2 and second['iterations'] == 2
    assert result['checkpoint'] == second['checkpoint'] and osp.isfile(second['checkpoint'])
    assert result['distill']['teacher_checkpoint'] == first['checkpoint']
    _assert_distilled(second['work_dir'])
    _assert_stage2_loaded_stage1(work, result)

    # the stage-2 model really starts from stage 1's weights (student keys, no 'student.')
    stage1 = torch.load(first['checkpoint'], map_location='cpu')['state_dict']
    cfg = Config.fromfile(RETINANET)
    cfg.merge_from_dict(digits_overrides(cfg, tiny_digits))
    cfg = binary_stage(cfg, first['checkpoint'], RETINANET)
    cfg.work_dir = str(tmp_path / 'load_check')
    init_default_scope('mmdet')
    runner = build_runner(cfg)
    runner.load_or_resume()
    key = 'backbone.layer2.0.unit1.conv.weight'
    assert key in stage1
    torch.testing.assert_close(runner.model.student.state_dict()[key], stage1[key])
    assert not torch.equal(runner.model.student.state_dict()[key],
                           torch.zeros_like(stage1[key]))
    # stage 2 saves the student under its own keys: the plain binary config takes it
    stage2 = torch.load(second['checkpoint'], map_location='cpu')['state_dict']
    assert key in stage2 and not any(k.startswith(('student.', 'teacher')) for k in stage2)
    assert set(stage2) == set(runner.model.student.state_dict())
    dumped = Config.fromfile(osp.join(second['work_dir'], osp.basename(RETINANET)))
    assert dumped.model.type == 'RetinaNet'


def test_two_stage_segmentation_distils_and_no_distill_turns_it_off(tiny_digits, tmp_path):
    work = str(tmp_path / 'distil')
    result = _two_stage(FCN, tiny_digits, work)
    _assert_distilled(result['stages']['stage2_binary']['work_dir'])
    _assert_stage2_loaded_stage1(work, result)

    plain = _two_stage(FCN, tiny_digits, str(tmp_path / 'plain'), extra=['--no-distill'])
    assert plain['distill'] is None
    rows = _logged_losses(plain['stages']['stage2_binary']['work_dir'])
    assert rows and not any('loss_distill_feat' in r for r in rows)


def test_two_stage_with_a_binary_activation_float_stage(tiny_digits, tmp_path):
    """--float-stage-activations binary: stage 1 floats only the weights, stage 2 loads it
    and is taught by that same network."""
    work = str(tmp_path / 'binact')
    result = _two_stage(FCN, tiny_digits, work, extra=['--float-stage-activations', 'binary'])
    assert result['float_stage_activations'] == 'binary'
    stage1 = Config.fromfile(osp.join(work, 'stage1_float', osp.basename(FCN)))
    assert stage1.model.backbone.kernel_quantizer == 'identity'
    assert 'input_quantizer' not in stage1.model.backbone  # the config's own binary ones
    _assert_distilled(result['stages']['stage2_binary']['work_dir'])
    _assert_stage2_loaded_stage1(work, result)


def test_each_stage_config_is_written_before_the_stage_trains(tiny_digits, tmp_path,
                                                              monkeypatch):
    """A stage stopped part way (budget, Ctrl-C, a killed job) still leaves the config that
    tools/test.py needs to score its checkpoints: stage 2's is the student, not the
    distillation wrapper that mmengine's Runner dumps there when it is built."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(FCN)
    cfg.merge_from_dict(digits_overrides(cfg, tiny_digits))
    cfg.work_dir = str(tmp_path)
    name = osp.basename(FCN)
    real_train = Runner.train

    def stop_in_stage_2(runner):
        if osp.basename(runner.work_dir) == 'stage2_binary':
            raise KeyboardInterrupt
        return real_train(runner)

    monkeypatch.setattr(Runner, 'train', stop_in_stage_2)
    with pytest.raises(KeyboardInterrupt):
        jobs.train_two_stage(cfg, FCN, max_iters=4)
    first = Config.fromfile(str(tmp_path / 'stage1_float' / name))
    second = Config.fromfile(str(tmp_path / 'stage2_binary' / name))
    assert first.model.backbone.kernel_quantizer == 'identity'
    assert second.model.type == 'EncoderDecoder'  # distilled, yet the student is written
    assert second.model.backbone.get('kernel_quantizer') != 'identity'
    assert first.train_cfg.max_iters == 2 and second.train_cfg.max_iters == 2


def _fcn_batch(size=64, classes=11):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, size, size)))
        samples.append(s)
    return torch.randn(2, 3, size, size), samples


def test_teacher_gets_no_gradient_is_not_updated_and_not_saved():
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(FCN)
    cfg.model.pop('data_preprocessor', None)
    teacher_cfg = float_stage(cfg).model
    model = MODELS.build(dict(type='DistillingModel', student=cfg.model, teacher=teacher_cfg))
    model.train()
    teacher = model.teacher
    assert not teacher.training
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    own = {id(p) for p in model.parameters()}
    assert not any(id(p) in own for p in teacher.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    inputs, samples = _fcn_batch(classes=cfg.model.decode_head.num_classes)
    losses = model(inputs, samples, mode='loss')
    assert losses['loss_distill_feat'] > 0 and losses['loss_distill_logits'] > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    optimizer.step()
    assert all(p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key  # BN statistics included
    assert set(model.state_dict()) == set(model.student.state_dict())


def test_relative_feature_loss_is_scale_free_and_refuses_unknown_kinds():
    from bnn_tasks.models.distill_losses import feature_mse
    torch.manual_seed(0)
    student = [torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)]
    teacher = [torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)]
    raw = feature_mse(student, teacher, 'neck')
    relative = feature_mse(student, teacher, 'neck', 'relative')
    expected = torch.stack([((s - t) ** 2).mean() / (t ** 2).mean()
                            for s, t in zip(student, teacher)]).mean()
    assert torch.allclose(relative, expected)
    # maps 10x larger: the raw MSE grows 100x, the relative one stays
    scaled = feature_mse([10 * s for s in student], [10 * t for t in teacher], 'neck',
                         'relative')
    assert torch.allclose(scaled, relative, rtol=1e-5)
    assert torch.allclose(feature_mse([10 * s for s in student], [10 * t for t in teacher],
                                      'neck'), 100 * raw, rtol=1e-5)
    assert feature_mse(teacher, teacher, 'neck', 'relative') == 0
    with pytest.raises(ValueError, match="unknown feature loss 'l1'"):
        feature_mse(student, teacher, 'neck', 'l1')


def _detection_batch(size=128, boxes=((10., 12., 60., 70.), (70., 64., 120., 118.))):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = []
    for i in range(2):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                        ori_shape=(size, size), scale_factor=(1.0, 1.0),
                                        batch_input_shape=(size, size)))
        s.gt_instances = InstanceData(bboxes=torch.tensor(boxes), labels=torch.tensor([i, 3]))
        samples.append(s)
    return torch.randn(2, 3, size, size), samples


def _detection_model_cfg(path):
    cfg = Config.fromfile(path)
    cfg.model.pop('data_preprocessor', None)
    return cfg


def test_roi_logits_are_distilled_on_the_rois_the_student_sampled():
    """The binary-neck-and-heads Faster R-CNN taught by the float twin: the RoI head's class
    logits get a KL term, computed by the teacher's RoI head at the student's RoIs."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    torch.manual_seed(0)
    student = _detection_model_cfg(BNH).model
    teacher = _detection_model_cfg(FLOAT_FRCNN).model
    model = MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                              feat_weight=0.0))
    model.train()
    calls = []
    teacher_forward = model.teacher.roi_head._bbox_forward
    model.teacher.roi_head._bbox_forward = lambda x, rois: calls.append(rois) or \
        teacher_forward(x, rois)
    inputs, samples = _detection_batch()
    losses = model(inputs, samples, mode='loss')
    roi_loss = losses['loss_distill_roi_logits']
    assert torch.isfinite(roi_loss) and roi_loss > 0
    assert 'loss_distill_feat' not in losses and losses['loss_distill_logits'] > 0  # RPN
    # the teacher scored the RoIs the student sampled: batch indices of both images, and the
    # ground-truth boxes the sampler adds as proposals among them
    (rois,) = calls
    assert set(rois[:, 0].tolist()) == {0.0, 1.0}
    gt = torch.tensor([[0., 10., 12., 60., 70.]])
    assert (rois == gt).all(dim=1).any()
    model.student.zero_grad()
    roi_loss.backward()
    fc_cls = model.student.roi_head.bbox_head.fc_cls.weight
    assert fc_cls.grad is not None and fc_cls.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())

    # weight 0 turns the term off; a teacher without RoI head is refused by name
    off = MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                            roi_logits_weight=0.0))
    off.train()
    assert 'loss_distill_roi_logits' not in off(*_detection_batch(), mode='loss')
    one_stage = _detection_model_cfg(RETINANET).model
    with pytest.raises(ValueError, match='roi_logits_weight=0'):
        MODELS.build(dict(type='DistillingModel', student=student, teacher=one_stage,
                          feat_weight=0.0, logits_weight=0.0))


def test_roi_logits_kl_is_zero_for_equal_logits_and_matches_the_softmax_formula():
    from bnn_tasks.models.distill_losses import roi_logits_kl
    torch.manual_seed(0)
    s, t = torch.randn(7, 11), torch.randn(7, 11)
    assert roi_logits_kl(t, t, sigmoid=False).abs() < 1e-6
    p = t.softmax(1)
    expected = (p * (p.log() - s.log_softmax(1))).sum(1).mean()
    assert torch.allclose(roi_logits_kl(s, t, sigmoid=False), expected, atol=1e-6)
    assert torch.allclose(roi_logits_kl(2 * s, 2 * t, sigmoid=False, temperature=2.0),
                          4 * expected, atol=1e-5)
    with pytest.raises(ValueError, match='same classes'):
        roi_logits_kl(s, t[:, :5], sigmoid=False)


def test_class_weighted_logits_kl_is_the_weighted_mean_by_the_teachers_class():
    from bnn_tasks.models.distill_losses import logits_kl, softmax_kl
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    weight = torch.tensor([0.1, 1.0, 2.0])
    kl = softmax_kl(s, t, dim=1)
    w = weight[t.argmax(1)]
    expected = (w * kl).sum() / w.sum()
    got = logits_kl([s], [t], channels=3, sigmoid=False, class_weight=weight)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, kl.mean(), atol=1e-3)  # the weights change the mean
    # equal weights: the plain mean
    assert torch.allclose(logits_kl([s], [t], 3, False, class_weight=torch.ones(3)), kl.mean())
    with pytest.raises(ValueError, match='2 class weights for a head of 3 classes'):
        logits_kl([s], [t], 3, False, class_weight=torch.ones(2))
    with pytest.raises(ValueError, match='sigmoid'):
        logits_kl([s], [t], 3, True, class_weight=torch.ones(3))


def test_teacher_foreground_logits_kl_sums_per_object_anchor_of_the_teacher():
    """The dense-head KL normalized like the focal/SSD loss: summed over every anchor and map,
    divided by the teacher's soft count of object anchors; background anchors where the two
    agree do not dilute it (they do dilute the plain mean)."""
    from bnn_tasks.models.distill_losses import logits_kl, sigmoid_kl, softmax_kl
    torch.manual_seed(0)
    # sigmoid head (RetinaNet): 3 anchors x 4 classes per position, two levels
    s = [torch.randn(2, 12, 5, 6), torch.randn(2, 12, 3, 3)]
    t = [torch.randn(2, 12, 5, 6), torch.randn(2, 12, 3, 3)]
    kl_sum = sum(sigmoid_kl(a, b).sum() for a, b in zip(s, t))
    objects = sum(torch.sigmoid(b).reshape(2, 3, 4, *b.shape[2:]).amax(2).sum() for b in t)
    got = logits_kl(s, t, 4, sigmoid=True, reduction='teacher_foreground')
    assert torch.allclose(got, kl_sum / objects, rtol=1e-5)
    # a level of agreeing, confident background anchors: the sum stays, the mean shrinks
    background = torch.full((2, 12, 16, 16), -12.0)
    padded = logits_kl(s + [background], t + [background.clone()], 4, sigmoid=True,
                       reduction='teacher_foreground')
    assert torch.allclose(padded, got, rtol=1e-3)
    mean = logits_kl(s, t, 4, sigmoid=True)
    assert torch.allclose(mean, torch.stack([sigmoid_kl(a, b).mean() for a, b in zip(s, t)]).mean())
    assert logits_kl(s + [background], t + [background.clone()], 4, sigmoid=True) < 0.7 * mean
    # the temperature softens the KL, not the teacher's count of objects
    tempered = logits_kl(s, t, 4, sigmoid=True, temperature=2.0, reduction='teacher_foreground')
    expected = sum(sigmoid_kl(a / 2, b / 2).sum() for a, b in zip(s, t)) / objects * 4
    assert torch.allclose(tempered, expected, rtol=1e-5)

    # softmax head (SSD): background is mmdet's last class
    s, t = torch.randn(2, 2 * 5, 4, 4), torch.randn(2, 2 * 5, 4, 4)
    shape = (2, 2, 5, 4, 4)
    kl = softmax_kl(s.reshape(shape), t.reshape(shape), dim=2)
    objects = (1 - torch.softmax(t.reshape(shape), dim=2)[:, :, -1]).sum()
    got = logits_kl([s], [t], 5, sigmoid=False, reduction='teacher_foreground')
    assert torch.allclose(got, kl.sum() / objects, rtol=1e-5)
    # no object anywhere: divided by at least one anchor, not by ~0
    s, t = torch.randn(1, 4, 2, 2), torch.full((1, 4, 2, 2), -30.0)
    assert torch.allclose(logits_kl([s], [t], 4, True, reduction='teacher_foreground'),
                          sigmoid_kl(s, t).sum())

    with pytest.raises(ValueError, match="unknown logits reduction 'sum'"):
        logits_kl([s], [t], 4, True, reduction='sum')
    with pytest.raises(ValueError, match='class weights weigh a mean'):
        logits_kl([s], [t], 4, False, class_weight=torch.ones(4),
                  reduction='teacher_foreground')
    with pytest.raises(ValueError, match='not whole anchors of 3 classes'):
        logits_kl([s], [t], 3, True)


def test_retinanet_distillation_can_normalize_its_logits_kl_by_the_teachers_objects():
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    torch.manual_seed(0)
    student = _detection_model_cfg(RETINANET).model
    teacher = float_stage(_detection_model_cfg(RETINANET)).model
    losses = {}
    for reduction in ('mean', 'teacher_foreground'):
        torch.manual_seed(0)
        model = MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                                  feat_weight=0.0, logits_reduction=reduction))
        model.train()
        torch.manual_seed(1)
        losses[reduction] = model(*_detection_batch(), mode='loss')['loss_distill_logits']
    assert torch.isfinite(losses['teacher_foreground'])
    # an untrained head's 9 anchors x 10 classes at every position: the sum over the teacher's
    # few object anchors is far larger than the mean over all of them
    assert losses['teacher_foreground'] > 10 * losses['mean'] > 0
    with pytest.raises(ValueError, match="logits_reduction='anchors'; use one of"):
        MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                          logits_reduction='anchors'))


def test_segmentation_distillation_weighs_pixels_like_the_loss_and_compares_training_logits():
    """The digits FCNs weigh background 0.1 in their cross-entropy and shift their eval-mode
    logits by -log(weight) (PriorCorrectedFCNHead). The per-pixel KL weighs pixels the same way,
    and the frozen (eval-mode) teacher's logits are compared without that shift, as the
    training-mode student's are."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    student = Config.fromfile(FCN).model
    teacher = Config.fromfile(FLOAT_FCN).model
    for cfg in (student, teacher):
        cfg.pop('data_preprocessor', None)
    model = MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                              feat_weight=0.0))
    assert model.logits_class_weight.tolist() == pytest.approx([0.1] + [1.0] * 10)
    inputs, _ = _fcn_batch(classes=11)
    head = model.teacher.decode_head
    feats = model.teacher.extract_feat(inputs)
    with torch.no_grad():
        shifted = head(feats)  # eval mode: what the teacher predicts
        head.training = True  # the head's own training form; its BN layers stay in eval
        expected = head(feats)
        head.training = False
    assert not torch.allclose(shifted, expected, atol=1e-3)
    got = model._teacher_outputs(inputs)['logits']
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)

    plain = MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                              feat_weight=0.0, logits_class_weight=None))
    assert plain.logits_class_weight is None
    with pytest.raises(ValueError, match='logits_class_weight has 3 weights'):
        MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                          logits_class_weight=[1, 1, 1]))
    with pytest.raises(ValueError, match="use 'loss'"):
        MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                          logits_class_weight='pixels'))
    with pytest.raises(ValueError, match="a segmentor's pixels take 'mean'"):
        MODELS.build(dict(type='DistillingModel', student=student, teacher=teacher,
                          logits_reduction='teacher_foreground'))


def test_two_stage_with_the_float_twin_as_teacher_distils_rpn_and_roi_logits(
        tiny_digits, tmp_path):
    """tools/train.py --two-stage --teacher-config: stage 2 of the binary-neck-and-heads
    Faster R-CNN learns from another model's checkpoint (here an untrained float twin)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    twin = MODELS.build(_detection_model_cfg(FLOAT_FRCNN).model)
    teacher_ckpt = str(tmp_path / 'twin.pth')
    torch.save({'state_dict': twin.state_dict()}, teacher_ckpt)
    work = str(tmp_path / 'work')
    result = _two_stage(BNH, tiny_digits, work, extra=[
        '--teacher-config', FLOAT_FRCNN, '--teacher-checkpoint', teacher_ckpt,
        '--distill-options', 'feat_weight=0'])
    assert result['distill']['teacher_config'] == FLOAT_FRCNN
    assert result['distill']['options'] == {'feat_weight': 0}
    rows = _logged_losses(result['stages']['stage2_binary']['work_dir'])
    assert rows and all(r['loss_distill_roi_logits'] > 0 and r['loss_distill_logits'] > 0
                        and 'loss_distill_feat' not in r for r in rows), rows
    log = ''.join(open(p).read()
                  for p in glob.glob(osp.join(work, 'stage2_binary', '*', '*.log')))
    assert 'distillation teacher loaded from ' + teacher_ckpt in log


def test_another_model_can_teach_the_float_stage_too(tiny_digits, tmp_path):
    """--distill-float-stage: the float twin FCN (here untrained) teaches both stages of the
    binary FCN, whose float stage starts from a pretrained backbone (checked, and loaded into
    the student, not the wrapper); both stages save the student alone."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    twin = MODELS.build(Config.fromfile(FLOAT_FCN).model)
    teacher_ckpt = str(tmp_path / 'twin.pth')
    torch.save({'state_dict': twin.state_dict()}, teacher_ckpt)
    backbone = MODELS.build(float_stage(Config.fromfile(FCN)).model).backbone
    pretrained = str(tmp_path / 'backbone.pth')
    torch.save({'state_dict': {'backbone.' + k: v for k, v in backbone.state_dict().items()},
                'meta': {'backbone_pretrain': {'iterations': 1}}}, pretrained)
    teacher = ['--teacher-config', FLOAT_FCN, '--teacher-checkpoint', teacher_ckpt]
    work = str(tmp_path / 'work')
    result = _two_stage(FCN, tiny_digits, work, options={'load_from': pretrained}, extra=[
        *teacher, '--distill-float-stage', '--distill-options', 'feat_weight=0'])
    assert result['distill']['float_stage'] is True
    for stage in ('stage1_float', 'stage2_binary'):
        rows = _logged_losses(result['stages'][stage]['work_dir'])
        assert rows and all(r['loss_distill_logits'] > 0 and 'loss_distill_feat' not in r
                            for r in rows), (stage, rows)
        state = torch.load(result['stages'][stage]['checkpoint'], map_location='cpu')
        assert any(k.startswith('backbone.') for k in state['state_dict'])
        assert not any(k.startswith(('student.', 'teacher')) for k in state['state_dict'])
    log = ''.join(open(p).read()
                  for p in glob.glob(osp.join(work, 'stage1_float', '*', '*.log')))
    assert f'Load checkpoint from {pretrained}' in log
    assert 'distillation teacher loaded from ' + teacher_ckpt in log
    dumped = Config.fromfile(osp.join(work, 'stage1_float', osp.basename(FCN)))
    assert dumped.model.type == 'EncoderDecoder'  # the float stage as trained, for tools/test.py

    code = train_tool.run_tool(train_tool.main, [FCN, '--two-stage', '--distill-float-stage',
                                                 '--work-dir', str(tmp_path / 'refused')])
    assert code == 2  # no teacher of another model: refused before training
