"""Timing ONNX Runtime sessions (and anything with a ``run(outputs, feeds)`` method) fairly.

Used by ``tools/benchmark.py`` (per layer, whole backbone, whole detector) and by the main job's
summary (binary detector against its float twin). Needs onnxruntime and numpy only.
"""
import statistics
import time
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

from .library import make_session
from .runtime_lite import Model, create_session, read_image

Feeds = Dict[str, np.ndarray]
# a short measurement: enough for a ratio in a job summary, not for a benchmark table
QUICK_TIMING = dict(min_time=1.0, min_runs=5, max_runs=30)


def time_sessions(sessions: Mapping[str, object], feeds: Union[Feeds, Sequence[Feeds]],
                  min_time: float, min_runs: int, max_runs: int) -> Dict[str, dict]:
    """Median wall time (s) of each session, measured round-robin.

    Interleaving the implementations spreads any load from other processes evenly over them,
    so the speedups stay meaningful on a shared machine. ``min_time`` is per implementation.
    ``feeds`` is one input dict or several (e.g. real images): round ``i`` gives every session
    the same ``feeds[i % len(feeds)]``, so data-dependent work (NMS) is equal for all.
    """
    rounds_feeds = [feeds] if isinstance(feeds, Mapping) else list(feeds)
    for session in sessions.values():
        session.run(None, rounds_feeds[0])  # warm-up: weight repacking, arena allocation
    times = {name: [] for name in sessions}
    cpu_times = {name: [] for name in sessions}
    start = time.perf_counter()
    budget = min_time * len(sessions)
    rounds = 0
    while rounds < max_runs and (rounds < min_runs or time.perf_counter() - start < budget):
        round_feeds = rounds_feeds[rounds % len(rounds_feeds)]
        for name, session in sessions.items():
            c = time.thread_time()
            t = time.perf_counter()
            session.run(None, round_feeds)
            times[name].append(time.perf_counter() - t)
            cpu_times[name].append(time.thread_time() - c)
        rounds += 1
    # cpu_s: CPU time of the calling thread. With 1 intra-op thread ONNX Runtime computes on the
    # calling thread, so this is the load-independent cost; with more threads it is meaningless.
    return {name: dict(median_s=statistics.median(ts), runs=len(ts), min_s=min(ts),
                       median_cpu_s=statistics.median(cpu_times[name]))
            for name, ts in times.items()}


def time_session(session, feeds, min_time: float, min_runs: int, max_runs: int) -> dict:
    """Median wall time (s) of ``session.run`` after one warm-up run."""
    return time_sessions({'only': session}, feeds, min_time, min_runs, max_runs)['only']


def image_feeds(model: Model, image) -> Feeds:
    """Inputs of an exported detector/segmentor for one image (path or RGB array), made by the
    pipeline the export recorded (runtime_lite's pre-processing)."""
    img = read_image(image) if isinstance(image, str) else image
    x, valid_hw, _ = model.preprocess(img)
    feeds = {model.inputs[0].name: x}
    if len(model.inputs) > 1:  # detectors: the valid size inside the padding, [2] or [N, 2]
        valid = np.array(valid_hw, np.float32)
        feeds[model.inputs[1].name] = valid if len(model.inputs[1].shape) == 1 else valid[None]
    return feeds


def binary_vs_float(binary_path: str, float_path: str, images: Sequence, threads: int = 1,
                    timing: Optional[dict] = None) -> dict:
    """Latency of an exported binary model and its float twin, round-robin on ``images``.

    Returns ``binary_ms``, ``float_ms`` (medians), ``float_over_binary`` (> 1: the binary model
    is faster), ``threads``, ``runs`` and, at 1 thread, the same ratio from CPU time.
    """
    binary = Model(binary_path, threads)
    feeds = [image_feeds(binary, image) for image in images]
    # pools sleep between runs so the idle one does not steal the other's cores (> 1 thread)
    sessions = {'binary': make_session(binary_path, threads, spinning=threads == 1),
                'float': create_session(float_path, threads, register_library=False,
                                        spinning=threads == 1)}
    result = time_sessions(sessions, feeds, **(timing or QUICK_TIMING))
    b, f = result['binary'], result['float']
    out = dict(threads=threads, runs=b['runs'], binary_ms=b['median_s'] * 1e3,
               float_ms=f['median_s'] * 1e3, float_over_binary=f['median_s'] / b['median_s'])
    if threads == 1:
        out['float_over_binary_cputime'] = f['median_cpu_s'] / b['median_cpu_s']
    return out
