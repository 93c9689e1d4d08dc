# Group-Net-18 (2 bases) FCN from a digit-classification pretraining of its backbone:
#   python tools/pretrain_backbone.py configs/group_net/fcn_groupnet18-k2-d8_digits_pretrained.py \
#       --float-stage --minutes 5
#   python tools/train.py configs/group_net/fcn_groupnet18-k2-d8_digits_pretrained.py --two-stage
_base_ = './fcn_groupnet18-k2-d8_digits.py'
# written by tools/pretrain_backbone.py
load_from = 'work_dirs/pretrain/fcn_groupnet18-k2-d8_digits_pretrained.pth'
# a tenth of the lr for the pretrained backbone, as ./fcn_groupnet18-d8_digits_pretrained.py
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
