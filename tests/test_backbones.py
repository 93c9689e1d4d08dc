"""Binary backbones through the mmdet and mmseg registries."""
import copy

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS
from torch.nn.modules.batchnorm import _BatchNorm

import bnn_tasks  # noqa: F401  (registers the backbones)
from bnn_tasks.layers import BinaryConv2d, GroupNetBlock, XNORPPConv2d

FAMILIES = ['BiRealResNet', 'GroupNetResNet', 'XNORPPResNet']
REGISTRIES = {'mmdet': MMDET_MODELS, 'mmseg': MMSEG_MODELS}
CHANNELS = (64, 128, 256, 512)
STRIDES = (4, 8, 16, 32)
INPUT = (2, 3, 96, 128)


def small_cfg(family, depth, **kwargs):
    cfg = dict(type=family, depth=depth, **kwargs)
    if family == 'GroupNetResNet':
        cfg.setdefault('num_bases', 2)  # keep the test fast; the default of 5 is checked below
    return cfg


@pytest.mark.parametrize('registry', sorted(REGISTRIES))
@pytest.mark.parametrize('depth', [18, 34])
@pytest.mark.parametrize('family', FAMILIES)
def test_builds_through_registry_with_resnet_channels_and_strides(family, depth, registry):
    torch.manual_seed(0)
    model = REGISTRIES[registry].build(small_cfg(family, depth))
    expected_blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth]
    assert [len(getattr(model, f'layer{i + 1}')) for i in range(4)] == expected_blocks
    outs = model(torch.randn(*INPUT))
    assert len(outs) == 4
    for out, ch, stride in zip(outs, CHANNELS, STRIDES):
        assert out.shape == (INPUT[0], ch, INPUT[2] // stride, INPUT[3] // stride)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('out_indices', [(0,), (1, 3), (2, 3), (0, 1, 2, 3)])
def test_out_indices_select_stages(family, out_indices):
    model = MMDET_MODELS.build(small_cfg(family, 18, out_indices=out_indices))
    outs = model(torch.randn(*INPUT))
    assert [o.shape[1] for o in outs] == [CHANNELS[i] for i in out_indices]
    assert [INPUT[2] // o.shape[2] for o in outs] == [STRIDES[i] for i in out_indices]


@pytest.mark.parametrize('family', FAMILIES)
def test_dilated_output_stride_8(family):
    model = MMSEG_MODELS.build(small_cfg(family, 18, strides=(1, 2, 1, 1),
                                         dilations=(1, 1, 2, 4)))
    outs = model(torch.randn(1, 3, 96, 128))
    assert [o.shape[-2:] for o in outs] == [(24, 32), (12, 16), (12, 16), (12, 16)]


@pytest.mark.parametrize('family', FAMILIES)
def test_stem_is_full_precision_and_stage_convs_are_binary(family):
    model = MMDET_MODELS.build(small_cfg(family, 18))
    assert type(model.conv1) is torch.nn.Conv2d
    binary = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
    per_block = 2 * (2 if family == 'GroupNetResNet' else 1)
    assert len(binary) == 8 * per_block
    if family == 'XNORPPResNet':
        assert all(isinstance(m, XNORPPConv2d) for m in binary)
    # every 3x3 conv of the stages is binary; only 1x1 downsampling convs stay float
    float_convs = [m for n, m in model.named_modules()
                   if type(m) is torch.nn.Conv2d and n != 'conv1']
    assert float_convs and all(m.kernel_size == (1, 1) for m in float_convs)


@pytest.mark.parametrize('family', FAMILIES)
def test_every_binary_conv_sees_both_signs(family):
    # A ReLU'd stem feeding a sign directly (norm after the conv) gives the first binary conv
    # +1 everywhere: a conv that learns nothing. Every conv's binarized input must vary.
    torch.manual_seed(0)
    model = MMDET_MODELS.build(small_cfg(family, 18)).train()  # batch statistics in the norms
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = output.unique().tolist()
        return hook
    hooks = [m.input_quantizer.register_forward_hook(record(name))
             for name, m in model.named_modules() if isinstance(m, BinaryConv2d)]
    model(torch.randn(*INPUT))
    for h in hooks:
        h.remove()
    assert len(seen) == len(hooks)
    assert {name: v for name, v in seen.items() if v != [-1.0, 1.0]} == {}


@pytest.mark.parametrize('family', FAMILIES)
def test_backpropagates_to_latent_weights(family):
    model = MMDET_MODELS.build(small_cfg(family, 18))
    model.train()
    outs = model(torch.randn(*INPUT))
    sum(o.mean() for o in outs).backward()
    binary = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
    with_grad = [m for m in binary if m.weight.grad is not None and m.weight.grad.abs().sum() > 0]
    assert len(with_grad) == len(binary)
    assert model.conv1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages(family, frozen_stages):
    model = MMDET_MODELS.build(small_cfg(family, 18, frozen_stages=frozen_stages))
    model.train()
    frozen = [model.conv1, model.bn1] + [getattr(model, f'layer{i}')
                                         for i in range(1, frozen_stages + 1)]
    trainable = [getattr(model, f'layer{i}') for i in range(frozen_stages + 1, 5)]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in trainable:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())
    # a training step leaves frozen BN statistics untouched
    before = model.bn1.running_mean.clone()
    model(torch.randn(*INPUT))
    assert torch.equal(before, model.bn1.running_mean)


@pytest.mark.parametrize('family', FAMILIES)
def test_norm_eval_keeps_batchnorm_in_eval_mode(family):
    model = MMDET_MODELS.build(small_cfg(family, 18, norm_eval=True))
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    stats = [m.running_mean.clone() for m in bns]
    model(torch.randn(*INPUT))
    assert all(torch.equal(s, m.running_mean) for s, m in zip(stats, bns))
    model_default = MMDET_MODELS.build(small_cfg(family, 18))
    model_default.train()
    assert all(m.training for m in model_default.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('family', FAMILIES)
def test_state_dict_round_trip(family):
    torch.manual_seed(1)
    a = MMDET_MODELS.build(small_cfg(family, 18))
    a.train()
    a(torch.randn(*INPUT))  # move BN statistics away from their defaults
    a.eval()
    b = MMSEG_MODELS.build(small_cfg(family, 18))
    b.load_state_dict(copy.deepcopy(a.state_dict()), strict=True)
    b.eval()
    x = torch.randn(*INPUT)
    with torch.no_grad():
        for oa, ob in zip(a(x), b(x)):
            assert torch.equal(oa, ob)


def test_pretrained_init_cfg_loads_a_checkpoint(tmp_path):
    torch.manual_seed(2)
    source = MMDET_MODELS.build(small_cfg('BiRealResNet', 18))
    path = tmp_path / 'bireal18.pth'
    torch.save({'state_dict': source.state_dict()}, path)
    model = MMDET_MODELS.build(small_cfg('BiRealResNet', 18, init_cfg=dict(
        type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    for (name, p), q in zip(model.state_dict().items(), source.state_dict().values()):
        assert torch.equal(p, q), name


def test_group_net_defaults_and_bpac_rates():
    model = MMSEG_MODELS.build(dict(type='GroupNetResNet', depth=18, strides=(1, 2, 1, 1),
                                    dilations=(1, 1, 2, 4)))
    blocks = {i: [m for m in getattr(model, f'layer{i}').modules()
                  if isinstance(m, GroupNetBlock)] for i in range(1, 5)}
    assert all(b.num_bases == 5 for bs in blocks.values() for b in bs)
    for stage, dilation in ((1, 1), (2, 1), (3, 2), (4, 4)):
        for block in blocks[stage]:
            rates = [base.unit1.conv.dilation[0] for base in block.bases]
            rates2 = [base.unit2.conv.dilation[0] for base in block.bases]
            if dilation == 1:
                assert rates == [1] * 5
            else:  # BPAC: every base its own rate
                assert rates == [dilation * k for k in range(1, 6)]
                assert len(set(rates)) == 5
            assert rates2 == rates


def test_group_net_custom_bpac_rates_and_errors():
    model = MMSEG_MODELS.build(dict(type='GroupNetResNet', depth=18, num_bases=3,
                                    strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                                    bpac_rates=(None, None, (1, 2, 3), (2, 4, 8))))
    block = model.layer4[0]
    assert [b.unit1.conv.dilation[0] for b in block.bases] == [2, 4, 8]
    with pytest.raises(ValueError, match='needs 3 rates'):
        MMSEG_MODELS.build(dict(type='GroupNetResNet', depth=18, num_bases=3,
                                bpac_rates=(None, None, None, (2, 4))))


@pytest.mark.parametrize('registry', sorted(REGISTRIES))
@pytest.mark.parametrize('family', FAMILIES)
def test_unsupported_depth_is_a_clear_error(family, registry):
    with pytest.raises(KeyError, match=f'unsupported depth 50 for {family}; supported depths: '
                                       '18, 34'):
        REGISTRIES[registry].build(dict(type=family, depth=50))


def test_unknown_binarizer_in_backbone_config_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown input binarizer 'aprox_sign'"):
        MMDET_MODELS.build(dict(type='BiRealResNet', depth=18, input_quantizer='aprox_sign'))


def test_binarizers_can_be_chosen_in_config():
    model = MMDET_MODELS.build(dict(type='BiRealResNet', depth=18, input_quantizer='ste_sign',
                                    kernel_quantizer='sign'))
    conv = model.layer1[0].unit1.conv
    assert type(conv.input_quantizer).__name__ == 'SteSign'
    assert type(conv.kernel_quantizer).__name__ == 'SignWeight'


@pytest.mark.parametrize('model_name,method,out_indices,expected_channels', [
    ('resnet18', 'bireal', (1, 2, 3, 4), (64, 128, 256, 512)),
    ('resnet18', 'xnorpp', (1, 2, 3, 4), (64, 128, 256, 512)),
    ('dla34', 'xnor', (2, 3, 4, 5), (64, 128, 256, 512)),  # a non-ResNet family (DLA)
])
def test_binary_timm_backbone(model_name, method, out_indices, expected_channels):
    torch.manual_seed(0)
    cfg = dict(type='BinaryTimmBackbone', model_name=model_name, method=method,
               out_indices=out_indices)
    for registry in REGISTRIES.values():
        model = registry.build(cfg)
    assert model.out_channels == expected_channels
    assert model.strides == STRIDES
    # every conv is binary except the stem (the first conv of the timm model)
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    float_convs = [n for n, m in convs if not isinstance(m, BinaryConv2d)]
    assert float_convs == [convs[0][0]]
    assert len(model.binarized_layers) == len(convs) - 1
    outs = model(torch.randn(*INPUT))
    for out, ch, stride in zip(outs, expected_channels, STRIDES):
        assert out.shape == (INPUT[0], ch, INPUT[2] // stride, INPUT[3] // stride)
    sum(o.mean() for o in outs).backward()
    assert all(m.weight.grad is not None for m in model.binary_convs)


def test_binary_timm_backbone_keeps_requested_layers_in_float():
    model = MMDET_MODELS.build(dict(type='BinaryTimmBackbone', model_name='resnet18',
                                    keep_full_precision=['conv1', '*downsample*']))
    names = {n for n, m in model.named_modules() if isinstance(m, BinaryConv2d)}
    assert names and not any('downsample' in n for n in names)
