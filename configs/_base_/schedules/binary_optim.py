# Optimizer recipe for 1-bit backbones (shared by the binary configs and their FP twins, so
# the comparison differs only in the backbone).
optim_wrapper = dict(
    type='OptimWrapper',
    # Adam-family: sign() gradients are tiny and sparse; adaptive steps move latent weights
    # across zero where SGD stalls (Bi-Real Net, "How to train a compact BNN").
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4),
    # Clip: straight-through gradients and fresh heads give occasional huge steps early on.
    clip_grad=dict(max_norm=10, norm_type=2),
    # Latent binary weights only matter through their sign: decay would just pull them to 0
    # where signs flip randomly. The constructor finds every BinaryConv2d's parameters by type
    # (XNOR-Net++'s learned scales included) and gives them no decay (binary_decay_mult).
    constructor='BinaryOptimWrapperConstructor',
    paramwise_cfg=dict(
        norm_decay_mult=0.0,  # no decay on BN affine params (BN is what rescales binary convs)
        bypass_duplicate=True))
