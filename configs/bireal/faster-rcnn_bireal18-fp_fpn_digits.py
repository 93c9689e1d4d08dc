# Two-stage recipe, stage 1: the Bi-Real-18 Faster R-CNN with real-valued weights and clip(-1, 1)
# activations in place of sign (Bi-Real Net's float pretraining: a binary block has no other
# nonlinearity, so identity activations would make the backbone linear). Same parameter names.
# Stage 2 (faster-rcnn_bireal18_fpn_digits_2stage.py) starts from this checkpoint.
_base_ = './faster-rcnn_bireal18_fpn_digits.py'
model = dict(backbone=dict(input_quantizer='hardtanh', kernel_quantizer='identity'))
