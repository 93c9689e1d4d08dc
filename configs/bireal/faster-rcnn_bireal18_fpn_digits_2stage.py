# Two-stage recipe, stage 2: binarize the float stage-1 model (faster-rcnn_bireal18-fp_fpn_digits)
# and fine-tune. Latent weights start at trained float values, so signs start meaningful.
#   python tools/train.py configs/bireal/faster-rcnn_bireal18-fp_fpn_digits.py
#   python tools/train.py configs/bireal/faster-rcnn_bireal18_fpn_digits_2stage.py
_base_ = './faster-rcnn_bireal18_fpn_digits.py'
# weights only (no optimizer/iteration state): `load_from`, not `resume`
load_from = 'work_dirs/faster-rcnn_bireal18-fp_fpn_digits/iter_6000.pth'
max_iters = 4000
train_cfg = dict(max_iters=max_iters)
# half the from-scratch lr and a short warm-up: start close to a good solution
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=0.0),
]
