"""Shared skeleton of the binary ResNets (stem, stages, freezing), in mmdet's ResNet idiom.

A family (Bi-Real, Group-Net, XNOR-Net++) is a subclass that states its binary conv, its
binarizers, where its norm sits, and how it builds one block. Everything a mmdet ``ResNet`` user
expects works the same way: ``depth``, ``out_indices``, ``strides``, ``dilations``,
``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``init_cfg`` (including ``Pretrained``).
"""
import warnings
from typing import Optional, Sequence, Tuple

from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import make_downsample_shortcut, method_conv_cfg


class BinaryResNetBase(BaseModule):
    """ResNet-18/34 layout with binary blocks and a full-precision stem.

    Args:
        depth: 18 or 34.
        in_channels: input image channels.
        stem_channels: width of the full-precision 7x7 stem conv.
        base_channels: width of the first stage (doubled at every later stage).
        num_stages: 1 to 4.
        strides, dilations: per stage, as in mmdet's ResNet.
        out_indices: stages whose outputs are returned (0-based).
        frozen_stages: -1 freezes nothing, 0 the stem, i the stem and stages 1..i.
        norm_cfg: norm layer config (mmcv).
        norm_eval: keep norm layers in eval mode while training (frozen statistics).
        input_quantizer, kernel_quantizer: override the family's binarizers (names or dicts, see
            ``bnn_tasks.binarizers``).
        pretrained: deprecated alias of ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: mmengine initialisation config.
    """
    arch_settings = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
    # Family choices, set by subclasses: a method from ``bnn_tasks.layers.BINARY_METHODS`` and
    # where the norm sits relative to the binary conv.
    method = 'xnor'
    norm_position = 'after_conv'

    def __init__(self, depth: int, in_channels: int = 3, stem_channels: int = 64,
                 base_channels: int = 64, num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2), dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 norm_cfg: Optional[dict] = None, norm_eval: bool = False,
                 input_quantizer=None, kernel_quantizer=None,
                 pretrained: Optional[str] = None, init_cfg=None):
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('give either pretrained or init_cfg, not both')
            warnings.warn('pretrained is deprecated, use init_cfg=dict(type="Pretrained", ...)')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        if depth not in self.arch_settings:
            raise KeyError(f'unsupported depth {depth} for {name}; supported depths: '
                           f'{", ".join(map(str, sorted(self.arch_settings)))}')
        if not 1 <= num_stages <= 4:
            raise ValueError(f'{name}: num_stages must be 1..4, got {num_stages}')
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise ValueError(f'{name}: strides {tuple(strides)} and dilations {tuple(dilations)} '
                             f'need one entry per stage ({num_stages})')
        if not out_indices or max(out_indices) >= num_stages or min(out_indices) < 0:
            raise ValueError(f'{name}: out_indices {tuple(out_indices)} must be in '
                             f'[0, {num_stages - 1}]')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'{name}: frozen_stages must be in [-1, {num_stages}], '
                             f'got {frozen_stages}')
        self.depth = depth
        self.num_stages = num_stages
        self.strides = tuple(strides)
        self.dilations = tuple(dilations)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        self.norm_eval = norm_eval
        self.conv_cfg = method_conv_cfg(self.method, input_quantizer, kernel_quantizer)

        self._make_stem(in_channels, stem_channels)
        in_ch = stem_channels
        self.res_layers = []
        for i, num_blocks in enumerate(self.arch_settings[depth][:num_stages]):
            out_ch = base_channels * 2 ** i
            stage = self._make_stage(i, in_ch, out_ch, num_blocks, self.strides[i],
                                     self.dilations[i])
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, stage)
            self.res_layers.append(layer_name)
            in_ch = out_ch
        self._freeze_stages()

    # --- construction -------------------------------------------------------------------
    def _make_stem(self, in_channels: int, stem_channels: int):
        # The first layer stays full precision in every binary network (survey, Sec. 3):
        # binarizing 3 input channels loses too much.
        self.conv1 = nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        # A ReLU ends the stem only where a norm sits between it and the first sign (norm
        # before the conv). Where the first sign reads the stem output directly (Bi-Real,
        # Group-Net), sign(ReLU(x)) would be +1 everywhere (sign(0) = +1) and the first binary
        # conv would see a constant input; Bi-Real Net's own stem has no ReLU either.
        stem_relu = self.norm_position == 'before_conv'
        self.stem_act = nn.ReLU(inplace=True) if stem_relu else nn.Identity()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    @property
    def norm1(self):
        return getattr(self, self.norm1_name)

    def _make_stage(self, stage_index: int, in_channels: int, out_channels: int,
                    num_blocks: int, stride: int, dilation: int) -> nn.Sequential:
        blocks = []
        for b in range(num_blocks):
            first = b == 0
            block_in = in_channels if first else out_channels
            block_stride = stride if first else 1
            shortcut = make_downsample_shortcut(block_in, out_channels, block_stride,
                                                self.norm_cfg)
            blocks.append(self.make_block(stage_index, block_in, out_channels, block_stride,
                                          dilation, shortcut))
        return nn.Sequential(*blocks)

    def make_block(self, stage_index: int, in_channels: int, out_channels: int, stride: int,
                   dilation: int, shortcut: Optional[nn.Module]) -> nn.Module:
        raise NotImplementedError

    # --- train/eval behaviour -------------------------------------------------------------
    def _freeze_stages(self):
        if self.frozen_stages >= 0:
            for m in (self.conv1, self.norm1):
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            stage = getattr(self, f'layer{i}')
            stage.eval()
            for p in stage.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.maxpool(self.stem_act(self.norm1(self.conv1(x))))
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
