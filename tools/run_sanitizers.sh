#!/usr/bin/env bash
# Build the ONNX Runtime custom-op library with AddressSanitizer + UndefinedBehaviorSanitizer
# into a separate directory and run the kernel tests once against it.
#   bash tools/run_sanitizers.sh [extra pytest args]
# Exit status is pytest's; any sanitizer report aborts the process and fails the run.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-${BNN_TASKS_VENV:-${BNN_TASKS_CACHE:-$HOME/.cache/bnn_tasks}/venv}/bin/python}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
OUT="${BNN_TASKS_SANITIZE_DIR:-$REPO/build/sanitize}"
CXX="${CXX:-c++}"

"$PY" "$REPO/deploy/csrc/build.py" --sanitize --out "$OUT/libbnn_tasks_ort.so" >&2

# The ASan runtime must be the first library in the (uninstrumented) python process.
ASAN_RT="$("$CXX" -print-file-name=libasan.so)"
UBSAN_RT="$("$CXX" -print-file-name=libubsan.so)"
[ -f "$ASAN_RT" ] || { echo "error: libasan.so not found for $CXX" >&2; exit 2; }

cd "$REPO"
# detect_leaks=0: CPython and onnxruntime keep allocations alive at exit by design.
env LD_PRELOAD="$ASAN_RT $UBSAN_RT" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1" \
    UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1" \
    BNN_TASKS_ORT_LIBRARY="$OUT/libbnn_tasks_ort.so" \
    BNN_TASKS_KERNEL_TEST_EXAMPLES="${BNN_TASKS_KERNEL_TEST_EXAMPLES:-10}" \
    "$PY" -m pytest -q -p no:cacheprovider tests/test_kernel.py "$@"
