"""Where a model's time goes, by ONNX op type, from ONNX Runtime's own profiler.

ONNX Runtime writes one trace event per node execution (``cat == 'Node'``, name ending in
``_kernel_time``, ``args.op_name``) and one per ``session.run`` (``model_run``); shares are of
the summed ``model_run`` time, warm-up run excluded.
"""
import json
import os
import tempfile
from typing import Dict, List, Optional, Sequence

from .library import make_session


def aggregate_profile(events: List[dict]) -> dict:
    """``{runs, model_run_us, ops: [{op_type, total_us, calls, share}], ops_share}`` from a
    profile's events, the first ``model_run`` (warm-up) left out."""
    runs = sorted((e for e in events if e.get('cat') == 'Session' and e.get('name') == 'model_run'),
                  key=lambda e: e['ts'])
    warmup_end = runs[0]['ts'] + runs[0]['dur'] if runs else float('-inf')
    timed = runs[1:]
    by_op: Dict[str, dict] = {}
    for e in events:
        if (e.get('cat') != 'Node' or not e.get('name', '').endswith('_kernel_time')
                or e['ts'] <= warmup_end):
            continue
        op = e.get('args', {}).get('op_name', '?')
        entry = by_op.setdefault(op, dict(op_type=op, total_us=0, calls=0))
        entry['total_us'] += e['dur']
        entry['calls'] += 1
    total = sum(e['dur'] for e in timed)
    ops = sorted(by_op.values(), key=lambda o: -o['total_us'])
    for o in ops:
        o['share'] = o['total_us'] / total if total else 0.0
    return dict(runs=len(timed), model_run_us=total, ops=ops,
                ops_share=sum(o['share'] for o in ops))


def profile_ops(model: str, feeds: Sequence[dict], runs: int = 10, threads: int = 1,
                kernel: Optional[str] = None, register_library: bool = True) -> dict:
    """Run ``model`` ``runs`` times (plus a warm-up) over ``feeds`` with profiling on and
    aggregate by op type (:func:`aggregate_profile`)."""
    with tempfile.TemporaryDirectory() as tmp:
        options = dict(enable_profiling=True, profile_file_prefix=os.path.join(tmp, 'profile'))
        if register_library:
            session = make_session(model, threads, kernel, **options)
        else:
            from .runtime_lite import create_session
            session = create_session(model, threads, register_library=False, **options)
        for i in range(runs + 1):
            session.run(None, feeds[i % len(feeds)])
        with open(session.end_profiling()) as f:
            return aggregate_profile(json.load(f))
