"""Locate the native ``bnn_tasks::BinaryConv2d`` library and make ONNX Runtime sessions with it.

``pip install -e .`` (run by ``tools/install.sh``) builds ``libbnn_tasks_ort.so`` next to this
file. ``BNN_TASKS_ORT_LIBRARY`` points at another build (the sanitizer run uses it).

Kernel variant: the library picks the fastest its CPU supports when a session is created;
``BNN_TASKS_KERNEL=portable|avx2|avx512`` forces one (session creation fails if the CPU lacks
it). :func:`forced_kernel` sets it around session creation.
"""
import contextlib
import ctypes
import os
from typing import Iterator, Optional

LIBRARY_NAME = 'libbnn_tasks_ort.so'
LIBRARY_ENV = 'BNN_TASKS_ORT_LIBRARY'
KERNEL_ENV = 'BNN_TASKS_KERNEL'
KERNEL_VARIANTS = ('portable', 'avx2', 'avx512')


class LibraryNotBuiltError(FileNotFoundError):
    """The native library is missing (the message says how to build it)."""


def library_path() -> str:
    """Absolute path of the custom-op library; raises :class:`LibraryNotBuiltError` if absent."""
    override = os.environ.get(LIBRARY_ENV)
    path = override or os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)
    if not os.path.isfile(path):
        where = f'{LIBRARY_ENV}={override}' if override else path
        raise LibraryNotBuiltError(
            f'the bnn_tasks ONNX Runtime custom-op library is not built ({where} does not exist). '
            'Run tools/install.sh (or `pip install --no-deps --no-build-isolation -e .` in the '
            'repository), which compiles it.')
    return path


def session_options(threads: int = 1, spinning: bool = True, **options):
    """``onnxruntime.SessionOptions`` with the library registered and ``threads`` intra-op threads.

    ``spinning=False`` makes idle intra-op threads sleep instead of spinning after a run (when
    several multi-threaded sessions take turns, a spinning pool steals the cores of the next).
    Extra keyword arguments are set as attributes (e.g. ``graph_optimization_level``).
    """
    import onnxruntime as ort
    if int(threads) < 1:
        raise ValueError(f'threads must be >= 1, got {threads}')
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spinning:
        so.add_session_config_entry('session.intra_op.allow_spinning', '0')
    for name, value in options.items():
        setattr(so, name, value)
    so.register_custom_ops_library(library_path())
    return so


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
    """``onnxruntime.InferenceSession`` for ``model`` (path, bytes or ``onnx.ModelProto``)."""
    import onnxruntime as ort
    if hasattr(model, 'SerializeToString'):
        model = model.SerializeToString()
    so = session_options(threads, **options)
    with forced_kernel(kernel):
        return ort.InferenceSession(model, so, providers=['CPUExecutionProvider'])


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
