"""Binary methods as configurations, not class hierarchies (larq style).

A method names the binary conv class and its two binarizers. Backbones and the timm binarizer
look methods up here; a user can still override either binarizer in a config.
"""
# The method of a binarized timm model or a conv_cfg binary conv that names none.
DEFAULT_METHOD = 'bireal'
BINARY_METHODS = {
    # Bi-Real Net: ApproxSign activations, sign x mean|W| weights.
    'bireal': dict(type='BinaryConv2d', input_quantizer='approx_sign',
                   kernel_quantizer='scaled_sign'),
    # XNOR-Net: clipped-STE sign activations, sign x mean|W| weights (also Group-Net's bases).
    'xnor': dict(type='BinaryConv2d', input_quantizer='ste_sign', kernel_quantizer='scaled_sign'),
    # XNOR-Net++: plain sign weights, learned alpha x beta x gamma output factors.
    'xnorpp': dict(type='XNORPPConv2d', input_quantizer='ste_sign', kernel_quantizer='sign'),
}


def method_conv_cfg(method: str, input_quantizer=None, kernel_quantizer=None) -> dict:
    """The binary conv config of ``method``, with optional binarizer overrides."""
    if method not in BINARY_METHODS:
        raise KeyError(f'unknown binary method {method!r}; known methods: '
                       f'{", ".join(sorted(BINARY_METHODS))}')
    cfg = dict(BINARY_METHODS[method])
    if input_quantizer is not None:
        cfg['input_quantizer'] = input_quantizer
    if kernel_quantizer is not None:
        cfg['kernel_quantizer'] = kernel_quantizer
    return cfg
