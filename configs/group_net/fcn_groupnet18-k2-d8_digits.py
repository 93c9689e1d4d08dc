# Group-Net-18 FCN with K = 2 binary bases: ./fcn_groupnet18-d8_digits.py (5 bases) at the cost
# a 2-vCPU training budget affords (docs/training.md, "Group-Net's step cost"). The binary
# parallel atrous convolution keeps its first two rates per dilated stage.
_base_ = './fcn_groupnet18-d8_digits.py'
model = dict(backbone=dict(num_bases=2, bpac_rates=(None, None, (1, 2), (2, 3))))
