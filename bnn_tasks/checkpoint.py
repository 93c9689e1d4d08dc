"""Checkpoint files: written atomically, read safely, found again after a crash.

Training, testing, export and the orchestrating tools all go through this module:

- :func:`write_atomically` writes to a temporary name in the same folder, flushes it to disk
  and renames it over the target. A process killed at any moment leaves the old file or the
  new one, never a truncated one (``compat.atomic_checkpoint_writes`` routes mmengine's
  checkpoint and ``last_checkpoint`` writes through it).
- :func:`read_checkpoint` loads in weights-only mode (nothing beyond the allow-list of
  ``compat.checkpoint_safe_globals`` is unpickled) and turns every failure into a
  :class:`CheckpointError` that names the problem: missing file, truncated or foreign file, a
  pickled type outside the allow-list (named, refused for safety), not a checkpoint dict.
- :func:`latest_checkpoint` finds the newest checkpoint of a work dir that can be read,
  skipping (and reporting) unreadable ones.
- :func:`check_state_dict` refuses a checkpoint of another architecture, naming the keys.

It imports neither the training engine nor ``bnn_tasks.deploy``: both use it.
"""
import glob
import logging
import os
import os.path as osp
import pickle
import re
import uuid
import zipfile
from typing import Callable, Dict, List, Optional, Tuple

LAST_CHECKPOINT = 'last_checkpoint'  # mmengine's pointer file in a work dir

# Buffers that older checkpoints may lack and that do not change inference.
_OPTIONAL_SUFFIXES = ('num_batches_tracked', )


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint pickles something outside the weights-only allow-list."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint does not belong to the model the config builds."""


# ----------------------------------------------------------------------------------- writing
def write_atomically(path: str, data) -> None:
    """Write ``data`` (bytes or str) to ``path`` so that no reader ever sees a partial file."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    payload = data.encode('utf-8') if isinstance(data, str) else data
    # a unique name beside the target (same file system: the rename is atomic); created with
    # open() so that it gets the usual permissions, not mkstemp's owner-only ones
    tmp = osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        with open(tmp, 'xb') as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    # the rename itself survives a power cut only once the folder entry is flushed
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(obj, path: str) -> None:
    """``torch.save`` through :func:`write_atomically`."""
    import io

    import torch
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomically(path, buffer.getvalue())


# ----------------------------------------------------------------------------------- reading
_REFUSED_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')  # torch names the global it refused so


def _detail(error: BaseException) -> str:
    """The line of a load error that says what went wrong (torch puts an explanation of
    weights-only loading first, the finding in a later paragraph)."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    paragraphs = [p.strip() for p in text.split('\n\n') if p.strip()]
    if 'Weights only load failed' in text and len(paragraphs) > 1:
        return paragraphs[1].splitlines()[0][:200]
    return text.splitlines()[0][:200]


def _refused_global(error: BaseException) -> Optional[str]:
    """The type or callable a weights-only load refused to unpickle, if that is the error."""
    text = str(error)
    if 'weights-only loading only allows' in text:  # compat.checkpoint_safe_globals' getattr
        return text.splitlines()[0][:200]
    found = _REFUSED_GLOBAL.search(text) if 'Weights only load failed' in text else None
    return found.group(1) if found else None


def read_checkpoint(path: str, what: str = 'checkpoint', mmap: bool = False) -> dict:
    """Load ``path`` (weights-only) or raise :class:`CheckpointError` naming the problem.

    ``mmap=True`` maps the tensors instead of reading them (enough to look at ``meta``).
    """
    import torch
    import bnn_tasks.compat  # noqa: F401  (the allow-list of types mmengine checkpoints hold)
    if not osp.isfile(path):
        raise CheckpointError(f'{what} {path!r} does not exist')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=mmap)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError,
            ValueError, AttributeError, TypeError) as e:
        refused = _refused_global(e)
        if refused is not None:
            raise UnsafeCheckpointError(
                f'{what} {path!r} contains {refused}, which is outside the allow-list of '
                'types a checkpoint may hold; it is not loaded, for safety (unpickling it '
                'could run arbitrary code). Re-save the weights from a trusted environment '
                'as plain tensors.') from None
        raise CheckpointError(f'{what} {path!r} cannot be read (truncated, corrupt or not a '
                              f'PyTorch checkpoint): {_detail(e)}') from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{what} {path!r} holds a {type(ckpt).__name__}, not a '
                              'checkpoint dict')
    return ckpt


def checkpoint_iteration(path: str) -> int:
    """The training iteration a checkpoint was saved at (its ``meta``; tensors not loaded)."""
    iteration = checkpoint_meta(read_checkpoint(path, mmap=True)).get('iter')
    if not isinstance(iteration, int):
        raise CheckpointError(f'checkpoint {path!r} records no training iteration (meta.iter)')
    return iteration


def checkpoint_meta(ckpt: dict) -> dict:
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    return meta if isinstance(meta, dict) else {}


# ---------------------------------------------------------------------------------- resuming
def pointed_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``last_checkpoint`` names (None without a pointer); not read."""
    pointer = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        target = f.read().strip()
    if not target:
        return None
    return target if osp.isabs(target) or osp.isfile(target) else osp.join(work_dir, target)


def latest_checkpoint(work_dir: str, warn: Callable[[str], None] = None
                      ) -> Tuple[Optional[str], Optional[dict]]:
    """The newest readable training checkpoint of ``work_dir`` and its contents.

    Candidates are the ``last_checkpoint`` pointer's target and every ``*.pth`` in the folder,
    newest write first. One that cannot be read is skipped with a message through ``warn``
    (default: the logger), and the one before it is taken. ``(None, None)`` if none is left.
    """
    warn = warn or logging.getLogger(__name__).warning
    found = glob.glob(osp.join(work_dir, '*.pth'))
    target = pointed_checkpoint(work_dir)
    if target and osp.isfile(target) and target not in found:
        found.append(target)
    elif target and not osp.isfile(target):
        warn(f'{LAST_CHECKPOINT} in {work_dir} names {target!r}, which does not exist')
    # write order, not names: a rename keeps the time the data was written
    for path in sorted(found, key=lambda p: (osp.getmtime(p), p), reverse=True):
        try:
            ckpt = read_checkpoint(path)
        except CheckpointError as e:
            warn(f'skipping {path}: {e}')
            continue
        if 'state_dict' in ckpt and 'meta' in ckpt:  # a training checkpoint, not a backbone
            return path, ckpt
    return None, None


# ---------------------------------------------------------------------------- model matching
def state_dict_of(checkpoint) -> Dict:
    import torch
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        checkpoint = checkpoint['state_dict']
    elif isinstance(checkpoint, dict) and isinstance(checkpoint.get('model'), dict):
        checkpoint = checkpoint['model']
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f'checkpoint holds a {type(checkpoint).__name__}, not a '
                                      'state dict')
    return {(k[7:] if k.startswith('module.') else k): v for k, v in checkpoint.items()
            if isinstance(v, torch.Tensor)}


def _preview(names: List[str], n: int = 5) -> str:
    """``a, b, c, ... (k more; by module: backbone 60, roi_head 8)``."""
    shown = ', '.join(names[:n])
    if len(names) <= n:
        return shown
    counts: Dict[str, int] = {}
    for name in names:
        top = name.split('.')[0].split(' ')[0]
        counts[top] = counts.get(top, 0) + 1
    by_module = ', '.join(f'{k} {v}' for k, v in counts.items())
    return f'{shown}, ... ({len(names) - n} more; by module: {by_module})'


def check_state_dict(model, state: Dict, source: str = 'checkpoint') -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state`` fits ``model`` exactly."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL_SUFFIXES)]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}'
                  for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f'{len(missing)} parameters missing from it ({_preview(missing)})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected ({_preview(unexpected)})')
        if mismatched:
            parts.append(f'{len(mismatched)} with other shapes (checkpoint vs model: '
                         f'{_preview(mismatched, 3)})')
        raise CheckpointMismatchError(
            f'{source} does not fit the model built from the config '
            f'({type(model).__name__} with {type(getattr(model, "backbone", model)).__name__}): '
            + '; '.join(parts) + '. Is it a checkpoint of another architecture or config?')


def load_checkpoint_strict(model, path: str) -> dict:
    """Load ``path`` into ``model`` after :func:`check_state_dict`; returns its ``meta``
    (and gives the model the checkpoint's ``dataset_meta`` when it has one)."""
    checkpoint = read_checkpoint(path)
    state = state_dict_of(checkpoint)
    check_state_dict(model, state, source=f'checkpoint {path!r}')
    model.load_state_dict(state, strict=False)  # checked above, optional buffers aside
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
    if isinstance(meta, dict) and meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    return meta if isinstance(meta, dict) else {}
