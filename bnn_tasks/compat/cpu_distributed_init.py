"""mmengine 0.10.7: ``--launcher pytorch`` fails on machines without CUDA.

``mmengine.dist.utils._init_dist_pytorch`` calls ``torch.cuda.set_device(local_rank)`` before
``init_process_group`` whatever the backend, so a CPU-only machine dies with
``RuntimeError: Found no NVIDIA driver`` even with ``backend='gloo'``.

Fix: when CUDA is unavailable, initialise the process group directly (gloo/mpi) and skip the
device selection; with CUDA (or mmengine's MLU/NPU/MUSA paths) the original runs unchanged.
"""
import functools
import os


def apply() -> bool:
    from mmengine.dist import utils as dist_utils
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_bnn_tasks_cpu_fix', False):
        return True

    @functools.wraps(original)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        import torch
        from mmengine.device import is_mlu_available, is_musa_available, is_npu_available
        if (torch.cuda.is_available() or is_mlu_available() or is_npu_available()
                or is_musa_available() or init_backend != 'torch'):
            return original(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            raise RuntimeError('distributed backend nccl needs CUDA; use '
                               "env_cfg.dist_cfg.backend='gloo' on CPU machines")
        import torch.distributed as torch_dist
        torch_dist.init_process_group(backend=backend, rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    _init_dist_pytorch._bnn_tasks_cpu_fix = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch
    return True
