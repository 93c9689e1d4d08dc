# Group-Net-18 with K = 2 binary bases: ./retinanet_groupnet18_fpn_digits.py (5 bases, the paper's
# setting) at the cost a 2-vCPU training budget affords (docs/training.md, "Group-Net's step cost").
_base_ = './retinanet_groupnet18_fpn_digits.py'
model = dict(backbone=dict(num_bases=2))
