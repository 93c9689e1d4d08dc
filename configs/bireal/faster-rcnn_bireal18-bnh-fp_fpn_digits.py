# Two-stage recipe, stage 1 of the binary-neck-and-heads Faster R-CNN: real-valued weights and
# clip(-1, 1) activations wherever stage 2 binarizes (backbone, FPN 3x3, RPN conv, RoI fcs), as
# faster-rcnn_bireal18-fp_fpn_digits.py does for the backbone alone. Same parameter names.
# Stage 2: faster-rcnn_bireal18-bnh_fpn_digits_2stage.py.
_base_ = './faster-rcnn_bireal18-bnh_fpn_digits.py'
float_conv = dict(type='BinaryConv', method='bireal', input_quantizer='hardtanh',
                  kernel_quantizer='identity')
model = dict(
    backbone=dict(input_quantizer='hardtanh', kernel_quantizer='identity'),
    neck=dict(conv_cfg=float_conv),
    rpn_head=dict(conv_cfg=float_conv),
    roi_head=dict(bbox_head=dict(conv_cfg=float_conv)))
