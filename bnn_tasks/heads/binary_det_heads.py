"""mmdet heads whose inner convs/fcs can be binary (BiDet: only the first and last layers float).

The final cls/reg predictors stay full precision in every head. Between two binary layers the
activation must keep negative values: a binary conv binarizes its input with sign (sign(0) =
+1), so after a ReLU it would see all +1. Hence ``act_cfg`` (default PReLU) where mmdet
hard-codes ReLU in front of a layer that may now be binary.

* ``BinaryRPNHead``: the RPN's 3x3 conv built from ``conv_cfg`` (e.g.
  ``dict(type='BinaryConv', method='bireal')``); the 1x1 objectness/box convs stay float.
* ``BinaryRetinaHead``: RetinaHead whose tower ConvModules take ``act_cfg``.
* ``BinaryFCBBoxHead``: Shared2FC-style RoI head whose shared fcs are binary 1x1 convs on the
  flattened pooled features laid out as one image with a pixel per RoI, each inside a
  ``BinaryConvUnit`` (input BN, output BN, identity shortcut when the width is kept) and followed
  by ``act_cfg``. Each exports as one ``bnn_tasks::BinaryConv2d`` node (output BN and shortcut
  folded in) after its input ``BatchNormalization``.
"""
from mmcv.cnn import ConvModule, build_activation_layer, build_conv_layer
from mmdet.models.dense_heads import RetinaHead, RPNHead
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..layers import BinaryConvUnit

BINARY_CONV = dict(type='BinaryConv', method='bireal')
SIGNED_ACT = dict(type='PReLU')


@MODELS.register_module()
class BinaryRPNHead(RPNHead):
    """RPNHead whose 3x3 conv is built from ``conv_cfg`` (a single conv, as ``num_convs=1``)."""

    def __init__(self, *args, conv_cfg: dict = BINARY_CONV, **kwargs):
        self.conv_cfg = conv_cfg
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        if self.num_convs != 1:
            raise ValueError('BinaryRPNHead supports num_convs=1')
        self.rpn_conv = build_conv_layer(self.conv_cfg, self.in_channels, self.feat_channels, 3,
                                         padding=1, bias=True)


@MODELS.register_module()
class BinaryRetinaHead(RetinaHead):
    """RetinaHead with ``act_cfg`` for its tower ConvModules (ReLU would blind the next binary
    conv of the tower)."""

    def __init__(self, *args, act_cfg: dict = SIGNED_ACT, **kwargs):
        self.act_cfg = act_cfg
        super().__init__(*args, **kwargs)

    def _init_layers(self):
        super()._init_layers()
        for convs in (self.cls_convs, self.reg_convs):
            for i in range(self.stacked_convs):
                convs[i] = ConvModule(self.in_channels if i == 0 else self.feat_channels,
                                      self.feat_channels, 3, stride=1, padding=1,
                                      conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                      act_cfg=self.act_cfg)


@MODELS.register_module()
class BinaryFCBBoxHead(ConvFCBBoxHead):
    """Two (``num_binary_fcs``) shared binary fcs, then the float ``fc_cls``/``fc_reg``."""

    def __init__(self, *args, num_binary_fcs: int = 2, fc_out_channels: int = 1024,
                 conv_cfg: dict = BINARY_CONV, norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = SIGNED_ACT, **kwargs):
        # the parent builds fc_cls/fc_reg for fc_out_channels inputs; its float shared fcs are
        # then replaced by the binary ones
        super().__init__(*args, num_shared_convs=0, num_shared_fcs=num_binary_fcs,
                         num_cls_convs=0, num_cls_fcs=0, num_reg_convs=0, num_reg_fcs=0,
                         fc_out_channels=fc_out_channels, **kwargs)
        if conv_cfg.get('type') == 'BinaryConvUnit':
            raise ValueError("BinaryFCBBoxHead: conv_cfg is the binary conv inside its units "
                             "(e.g. type='BinaryConv'); it builds the BinaryConvUnits itself")
        self.shared_fcs = nn.ModuleList()
        layers, in_channels = [], self.in_channels * self.roi_feat_area
        for _ in range(num_binary_fcs):
            conv = build_conv_layer(dict(conv_cfg, binarize_pointwise=True), in_channels,
                                    fc_out_channels, 1, bias=False)
            # dim 2 holds one pixel per RoI (its size follows the data) and dim 0 is one image
            # of all RoIs whatever the image batch: the export gives neither a fixed or batch size
            conv.data_dependent_dims = (0, 2)
            # the pooled FPN features are not normalized (see BinaryConvUnit); an fc that keeps
            # its width gets the identity shortcut, the first (C*7*7 -> fc_out) none
            layers += [BinaryConvUnit(conv, norm_cfg, project_shortcut=False),
                       build_activation_layer(act_cfg)]
            in_channels = fc_out_channels
        self.binary_fcs = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple:
        # [P, C, k, k] -> one image [1, C*k*k, P, 1] whose pixels are the RoIs: each fc is a 1x1
        # binary conv, a GEMM over all RoIs at once (the kernel's fast shape; a batch of P
        # one-pixel images is not), and BN normalises over the RoIs as BatchNorm1d would.
        x = self.binary_fcs(x.flatten(1).t()[None, :, :, None])
        x = x[0, :, :, 0].t()                                  # [P, fc_out_channels]
        return self.fc_cls(x) if self.with_cls else None, \
            self.fc_reg(x) if self.with_reg else None
