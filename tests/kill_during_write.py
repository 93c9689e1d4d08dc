"""Test plugin: SIGKILL the process half-way through writing a chosen file.

Imported at start-up of a training process (``tests/test_reliability.py`` loads it from a
``sitecustomize`` module).
``BNN_TASKS_TEST_KILL_WRITING=NAME:N`` kills the process during the N-th write of a file named
NAME through ``bnn_tasks.checkpoint.write_atomically`` (the path of every checkpoint and
``last_checkpoint`` write): half of the data is on disk under the temporary name, as when a
real kill lands inside ``torch.save``.
"""
import os
import os.path as osp
import signal

from bnn_tasks import checkpoint

_name, _, _nth = os.environ.get('BNN_TASKS_TEST_KILL_WRITING', '').partition(':')
_seen = {'count': 0}
_write_atomically = checkpoint.write_atomically


def _write_then_die(path, data):
    if osp.basename(path) == _name:
        _seen['count'] += 1
        if _seen['count'] == int(_nth or 1):
            size = len(data)

            def die(fd):
                os.ftruncate(fd, size // 2)
                os.kill(os.getpid(), signal.SIGKILL)

            os.fsync = die
    _write_atomically(path, data)


if _name:
    checkpoint.write_atomically = _write_then_die
