"""mmengine 0.10.7 cannot load its own checkpoints under torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default; mmengine calls ``torch.load``
without the argument, and its checkpoints hold more than tensors: the message hub's
``HistoryBuffer`` objects (logged values, as numpy arrays) and numpy scalars/dtypes in ``meta``.
Loading one (``--resume``, ``load_from``, ``tools/test.py``) fails with
``WeightsUnpickler error: Unsupported global``.

Fix: allow-list exactly those types with ``torch.serialization.add_safe_globals``. Loading stays
in weights-only mode: no arbitrary code from a checkpoint is ever executed (we never pass
``weights_only=False``). The types are plain data holders: numpy array reconstruction, dtypes
and scalars, and mmengine's ``HistoryBuffer`` (whose state is two numpy arrays and an int).

One more global is needed: ``HistoryBuffer.__getstate__`` stores its statistics functions, which
pickle as ``getattr(HistoryBuffer, 'mean')``. Allow-listing the builtin ``getattr`` would reopen
the door weights-only loading closes (attribute walks to arbitrary objects), so the name
``builtins.getattr`` is bound to ``history_buffer_getattr``, which only returns HistoryBuffer's
registered statistics methods and refuses anything else.
"""
import pickle
from typing import List


def _numpy_globals() -> List:
    import numpy as np
    items = [np.ndarray, np.dtype]
    # numpy >= 1.25 has one class per dtype (numpy.dtypes.Float64DType, ...): pickled dtypes
    # refer to them
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        items += [getattr(dtypes_mod, n) for n in dir(dtypes_mod)
                  if n.endswith('DType') and isinstance(getattr(dtypes_mod, n), type)]
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    # pickles name these by the module of the numpy that wrote them: accept both spellings
    for name in ('_reconstruct', 'scalar'):
        fn = getattr(multiarray, name)
        items += [(fn, f'numpy._core.multiarray.{name}'), (fn, f'numpy.core.multiarray.{name}')]
    return items


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to what mmengine checkpoints use: HistoryBuffer statistics."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) and (
            name in ('min', 'max', 'current', 'mean') or name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); weights-only loading only allows '
        f'HistoryBuffer statistics methods')


def safe_globals() -> List:
    """The types an mmengine checkpoint contains besides tensors and builtin containers."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return _numpy_globals() + [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')]


def apply() -> bool:
    import torch
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4: weights_only was not the default, nothing to fix
        return True
    add(safe_globals())
    return True
