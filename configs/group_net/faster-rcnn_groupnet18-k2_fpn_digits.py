# Group-Net-18 with K = 2 binary bases: ./faster-rcnn_groupnet18_fpn_digits.py (5 bases, the
# paper's setting) at the cost a 2-vCPU training budget affords. The bases multiply the
# backbone's convolution arithmetic: 5 bases make a digits step 3-4 float steps, 2 bases about 2
# (docs/training.md, "Group-Net's step cost").
_base_ = './faster-rcnn_groupnet18_fpn_digits.py'
model = dict(backbone=dict(num_bases=2))
