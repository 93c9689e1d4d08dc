"""The native ``bnn_tasks::BinaryConv2d`` library: where it is, which kernel variant it runs.

``pip install -e .`` (run by ``tools/install.sh``) builds ``libbnn_tasks_ort.so`` next to this
file. ``BNN_TASKS_ORT_LIBRARY`` points at another build (the sanitizer run uses it). Locating it
and making sessions live in ``runtime_lite`` (imported here), which needs only onnxruntime.

Kernel variant: the library picks the fastest its CPU supports when a session is created (per
layer between ``amx`` and ``avx512``, see docs/kernels.md);
``BNN_TASKS_KERNEL=portable|avx2|avx512|amx`` forces one (session creation fails if the CPU
lacks it, or for ``amx`` if the OS does not grant the tile-data permission).
:func:`forced_kernel` sets it around session creation.
"""
import contextlib
import ctypes
import os
from typing import Iterator, Optional

# Finding the library and making sessions needs nothing but onnxruntime: runtime_lite owns it.
from .runtime_lite import (LIBRARY_ENV, LIBRARY_NAME, LibraryNotBuiltError,  # noqa: F401
                           create_session, library_path, session_options)

KERNEL_ENV = 'BNN_TASKS_KERNEL'
KERNEL_VARIANTS = ('portable', 'avx2', 'avx512', 'amx')


@contextlib.contextmanager
def forced_kernel(variant: Optional[str]) -> Iterator[None]:
    """Force a kernel variant for sessions created inside the block.

    ``'auto'`` picks by CPU features; ``None`` leaves ``BNN_TASKS_KERNEL`` as it is.
    """
    if variant is None:
        yield
        return
    if variant not in KERNEL_VARIANTS + ('auto',):
        raise ValueError(f'unknown kernel variant {variant!r}; expected one of '
                         f'{KERNEL_VARIANTS + ("auto",)}')
    previous = os.environ.get(KERNEL_ENV)
    os.environ[KERNEL_ENV] = variant
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(KERNEL_ENV, None)
        else:
            os.environ[KERNEL_ENV] = previous


def make_session(model, threads: int = 1, kernel: Optional[str] = None, **options):
    """:func:`create_session` (library registered) with ``kernel`` forced while it is created."""
    with forced_kernel(kernel):
        return create_session(model, threads, **options)


def selected_kernel(variant: Optional[str] = None) -> str:
    """The variant a session created now would use (``'avx512'``...); raises if none can be used."""
    with forced_kernel(variant):
        lib = ctypes.CDLL(library_path())
        fn = lib.BnnTasksSelectedKernel
        fn.restype = ctypes.c_char_p
        answer = fn().decode()
    if answer not in KERNEL_VARIANTS:
        raise RuntimeError(answer)
    return answer


def supported_kernels() -> list:
    """Kernel variants this CPU can run, slowest first."""
    out = []
    for v in KERNEL_VARIANTS:
        try:
            selected_kernel(v)
            out.append(v)
        except RuntimeError:
            pass
    return out
