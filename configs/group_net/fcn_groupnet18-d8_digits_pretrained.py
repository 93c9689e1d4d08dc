# Group-Net-18 (BPAC) FCN whose backbone starts from a digit-classification pretraining (the
# stand-in for the ImageNet-pretrained backbones segmentation recipes start from; nothing is
# downloaded):
#   python tools/pretrain_backbone.py configs/group_net/fcn_groupnet18-d8_digits_pretrained.py \
#       --minutes 5
#   python tools/train.py configs/group_net/fcn_groupnet18-d8_digits_pretrained.py
_base_ = './fcn_groupnet18-d8_digits.py'
# written by tools/pretrain_backbone.py
load_from = 'work_dirs/pretrain/fcn_groupnet18-d8_digits_pretrained.pth'
# fine-tune the pretrained backbone at a tenth of the lr: the fresh heads' early gradients would
# otherwise overwrite what pretraining learned (binary latent weights included; they keep no
# decay, see BinaryOptimWrapperConstructor)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
