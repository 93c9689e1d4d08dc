"""Binarize gradually at the start of a binary run that starts from float weights.

Stage 2 of the recipe switches every binary conv from the float stage's function (clip(-1, 1)
activations, real-valued weights) to sign at once; on the Bi-Real-18 SSD that first step cost
21 VOC mAP points, which the binary stage then made up (docs/results/recipe; a 25 % warm-up did
not lift that row, measured once). This hook wraps each binary conv's binarizers in a
:class:`~bnn_tasks.binarizers.GradualBinarizer` and moves its blend from the float stage's
function to the binary one linearly over the first ``fraction`` of the run's iterations (re-read
every iteration, so a schedule re-fitted to a time budget stretches the warm-up with it), then
puts the binary binarizers back. Evaluation always sees the binary network, and checkpoints
hold the same parameters with or without the wrappers (binarizers have none).
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..binarizers import GradualBinarizer, build_binarizer
from ..layers import BinaryConv2d
from .recipe import FLOAT_INPUT_QUANTIZER, check_warmup_fraction


def wrap_binarizers(model, relax_activations: bool = True) -> list:
    """Wrap the sign binarizers of every binary conv in ``model`` (progress 0); returns the
    ``(conv, attribute, GradualBinarizer)`` triples. Float convs (a distillation teacher, a
    float stage) are left alone; a model without a binary conv is refused."""
    wrapped = []
    for conv in model.modules():
        if not isinstance(conv, BinaryConv2d):
            continue
        for attribute, kind in (('input_quantizer', 'input'), ('kernel_quantizer', 'kernel')):
            binary = getattr(conv, attribute)
            if not binary.is_sign or (kind == 'input' and not relax_activations):
                continue
            relaxed = build_binarizer(FLOAT_INPUT_QUANTIZER if kind == 'input'
                                      else binary.float_relaxation, kind)
            blend = GradualBinarizer(relaxed, binary).train(conv.training)
            setattr(conv, attribute, blend)
            wrapped.append((conv, attribute, blend))
    if not wrapped:
        raise ValueError('the model has no binary conv to binarize gradually')
    return wrapped


@HOOKS.register_module()
class BinarizationWarmupHook(Hook):
    """Blend from the float stage's function to the binary one over the first ``fraction`` of
    training (``relax_activations=False``: only the weights, for a float stage that already had
    binary activations)."""
    priority = 'NORMAL'

    def __init__(self, fraction: float, relax_activations: bool = True):
        check_warmup_fraction(fraction)
        self.fraction = float(fraction)
        self.relax_activations = relax_activations
        self._wrapped = []

    def _progress(self, runner) -> float:
        return min(1.0, runner.iter / max(1.0, self.fraction * runner.max_iters))

    def before_train(self, runner) -> None:
        if self._progress(runner) >= 1.0:  # resumed after the warm-up
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._wrapped = wrap_binarizers(model, self.relax_activations)
        runner.logger.info(f'binarization warm-up: {len(self._wrapped)} binarizers blended '
                           f'from the float stage to binary over the first '
                           f'{round(100 * self.fraction)} % of training')

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if not self._wrapped:
            return
        progress = self._progress(runner)
        if progress >= 1.0:
            self.unwrap()
            runner.logger.info(f'binarization warm-up done at iteration {runner.iter}: '
                               'fully binary from here')
            return
        for _, _, blend in self._wrapped:
            blend.progress = progress

    def after_train(self, runner) -> None:
        self.unwrap()  # a run shorter than its warm-up still ends binary

    def unwrap(self) -> None:
        for conv, attribute, blend in self._wrapped:
            setattr(conv, attribute, blend.binary)
        self._wrapped = []
