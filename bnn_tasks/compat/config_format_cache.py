"""mmengine 0.10.7: ``Config.pretty_text`` runs yapf over the whole config on every read.

The Runner reads it when it logs the environment, dumps the config, hands it to the
visualizer, in ``RuntimeInfoHook.before_run``, and again in every checkpoint's ``meta``: for
the configs here each read costs ~0.9 s of CPU (2-vCPU EPYC), so a short run, and a test
suite of short runs, spends more time formatting text than training.

Fix: remember yapf's answer for the last few texts it formatted. The formatted text is a pure
function of the input text and the style, so the output is byte-identical; a config that
changes produces a new input text and is formatted afresh.
"""
import functools

CACHE_SIZE = 16  # distinct configs alive in one process: stages, teacher, test tools


def _cached(format_code):
    """``format_code`` behind an LRU cache; mmengine passes the style as a dict, which is
    frozen into a hashable key here and thawed again for yapf."""

    @functools.lru_cache(maxsize=CACHE_SIZE)
    def format_frozen(text, style, kwargs):
        if isinstance(style, tuple):
            style = dict(style)
        return format_code(text, style_config=style, **dict(kwargs))

    @functools.wraps(format_code)
    def format_code_cached(text, style_config=None, **kwargs):
        style = tuple(sorted(style_config.items())) if isinstance(style_config, dict) \
            else style_config
        return format_frozen(text, style, tuple(sorted(kwargs.items())))

    format_code_cached._bnn_tasks_format_cache = format_frozen
    return format_code_cached


def apply() -> bool:
    """Patch the ``FormatCode`` that mmengine's config module calls; idempotent."""
    from mmengine.config import config as config_module
    if hasattr(config_module.FormatCode, '_bnn_tasks_format_cache'):
        return True
    config_module.FormatCode = _cached(config_module.FormatCode)
    return True
