"""The kernel tests pass against an AddressSanitizer + UBSan build (tools/run_sanitizers.sh).

The instrumented library is built once per source/flag fingerprint into the bnn_tasks cache
(``~/.cache/bnn_tasks/sanitize``, like the mmcv wheel), so a warm run only re-runs the reduced
property tests (~10 s; the build adds ~30 s on 2 cores). BNN_TASKS_SKIP_SANITIZERS=1 skips it.
"""
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _asan_runtime_available() -> bool:
    cxx = os.environ.get('CXX', 'c++')
    if shutil.which(cxx) is None:
        return False
    out = subprocess.run([cxx, '-print-file-name=libasan.so'], capture_output=True, text=True)
    return os.path.isabs(out.stdout.strip()) and os.path.exists(out.stdout.strip())


@pytest.mark.skipif(os.environ.get('BNN_TASKS_SKIP_SANITIZERS') == '1',
                    reason='BNN_TASKS_SKIP_SANITIZERS=1')
@pytest.mark.skipif(not _asan_runtime_available(), reason='no AddressSanitizer runtime')
def test_kernel_tests_pass_under_asan_and_ubsan():
    cache = os.environ.get('BNN_TASKS_CACHE', os.path.expanduser('~/.cache/bnn_tasks'))
    out = os.path.join(cache, 'sanitize')
    env = dict(os.environ, PYTHON=sys.executable, BNN_TASKS_SANITIZE_DIR=out,
               BNN_TASKS_KERNEL_TEST_EXAMPLES='8')
    proc = subprocess.run(['bash', os.path.join(REPO, 'tools', 'run_sanitizers.sh'), '-x', '-rs'],
                          env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    assert 'ERROR: AddressSanitizer' not in log and 'runtime error:' not in log, log
    # Every variant this CPU runs (amx included, whose tile loads the sanitizer build
    # bounds-checks itself) was exercised, not skipped.
    from bnn_tasks.deploy import library
    for variant in library.supported_kernels():
        assert f'cannot run the {variant} kernel' not in proc.stdout, proc.stdout[-4000:]
    lib = os.path.join(out, 'libbnn_tasks_ort.so')
    ldd = subprocess.run(['ldd', lib], capture_output=True, text=True).stdout
    assert 'libasan' in ldd and 'libubsan' in ldd, ldd  # really the instrumented build
