# Two-stage recipe, stage 1: the Bi-Real-18 Faster R-CNN with both binarizers set to identity,
# i.e. the same architecture (same parameter names) with float activations and weights.
# Stage 2 (faster-rcnn_bireal18_fpn_digits_2stage.py) starts from this checkpoint.
_base_ = './faster-rcnn_bireal18_fpn_digits.py'
model = dict(backbone=dict(input_quantizer='identity', kernel_quantizer='identity'))
