"""An optimizer constructor that finds latent binary weights by type, not by module name.

A binary conv's latent float weights matter only through their sign: weight decay would pull
them to 0, where signs flip at random. mmengine's ``paramwise_cfg.custom_keys`` can only select
them by name, and only the first (longest) matching key applies, so a config that also wants a
``backbone`` lr multiplier had to repeat it on every binary key, and a backbone whose convs
have other names (a binarized timm model) silently got decay on them.

``BinaryOptimWrapperConstructor`` is mmengine's default constructor (every ``paramwise_cfg``
option works as documented) plus one rule applied after them: every parameter owned by a
``BinaryConv2d`` (latent weights, and XNOR-Net++'s learned scale factors) gets
``weight_decay = base weight decay x binary_decay_mult`` (default 0). Learning-rate multipliers
(e.g. ``custom_keys={'backbone': dict(lr_mult=0.1)}``) are left as the keys set them.
"""
import copy

from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from ..layers.binary_conv import BinaryConv2d


def binary_parameter_ids(model) -> set:
    """``id`` of every parameter a ``BinaryConv2d`` owns directly."""
    return {id(p) for m in model.modules() if isinstance(m, BinaryConv2d)
            for p in m.parameters(recurse=False)}


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class BinaryOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor; no weight decay on binary convs' parameters.

    ``paramwise_cfg.binary_decay_mult`` (default 0.0) scales their weight decay.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        self.binary_decay_mult = float(paramwise_cfg.pop('binary_decay_mult', 0.0))
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        # the parent only builds per-parameter groups when paramwise_cfg is non-empty
        self.paramwise_cfg.setdefault('bypass_duplicate', False)

    def add_params(self, params, module, prefix: str = '', **kwargs) -> None:
        super().add_params(params, module, prefix, **kwargs)
        if prefix or self.base_wd is None:  # the parent recurses: adjust once, at the top
            return
        binary = binary_parameter_ids(module)
        for group in params:
            if id(group['params'][0]) in binary:
                group['weight_decay'] = self.base_wd * self.binary_decay_mult


def without_lr_multipliers(optim_wrapper: dict) -> dict:
    """A copy of the ``optim_wrapper`` config without the ``lr_mult`` of its paramwise
    ``custom_keys`` (decay multipliers stay).

    A ``*_pretrained`` config slows its ``backbone`` (lr_mult 0.1) so that fresh heads'
    early gradients do not overwrite what pretraining learned. Runs with no fresh part train
    every parameter at the full rate: the backbone pretraining itself, and stage 2 of the
    two-stage recipe, which starts from a network trained end to end and must re-fit the
    backbone most (measured on the Bi-Real-18 FCN, docs/results/recipe).
    """
    wrapper = copy.deepcopy(optim_wrapper)
    custom_keys = (wrapper.get('paramwise_cfg') or {}).get('custom_keys') or {}
    for key, options in list(custom_keys.items()):
        options = {k: v for k, v in options.items() if k != 'lr_mult'}
        if options:
            custom_keys[key] = options
        else:
            del custom_keys[key]
    return wrapper
