#!/usr/bin/env bash
# Set up everything bnn_tasks needs on a fresh machine, idempotently:
#   1. a virtualenv (outside the checkout, so every clone on this machine shares it),
#   2. the pinned Python stack (requirements/*.txt),
#   3. mmcv 2.1.0 with compiled CPU ops, built once from source and cached as a wheel
#      keyed by the torch version it was compiled against,
#   4. bnn_tasks itself (editable), which builds the ONNX Runtime custom-op library.
# A warm run only checks stamps and reinstalls bnn_tasks. Each step announces itself and a
# failure names the step.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${BNN_TASKS_CACHE:-$HOME/.cache/bnn_tasks}"
PYTHON="${BNN_TASKS_PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV="${BNN_TASKS_VENV:-$CACHE/venv}"
TORCH_VERSION="2.14.1"
MMCV_VERSION="2.1.0"
STEP="start"

log() { printf '[bnn_tasks install] %s\n' "$*" >&2; }
trap 'log "FAILED at step: $STEP (see the output above)"' ERR
step() { STEP="$1"; log "step: $1"; }

mkdir -p "$CACHE"

step "create virtualenv at $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

# Requirements are reinstalled only when their files change.
req_hash=$(cat "$REPO"/requirements/*.txt | sha1sum | cut -c1-16)
if [ "$(cat "$VENV/.bnn_requirements" 2>/dev/null)" != "$req_hash" ]; then
  step "install pinned Python requirements (torch $TORCH_VERSION, mmdet, mmseg, onnxruntime, ...)"
  "${PIP[@]}" install --progress-bar off -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt" ninja
  echo "$req_hash" > "$VENV/.bnn_requirements"
else
  log "requirements up to date ($req_hash)"
fi

# mmcv: its compiled ops must match the installed torch's ABI, so the cached wheel is keyed by
# the torch version (pip's own wheel cache keys only on the sdist).
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; then
  WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    step "build mmcv $MMCV_VERSION with CPU ops from source (about 15 minutes on 2 cores, once)"
    BUILD="$(mktemp -d)"
    "${PIP[@]}" download --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes C++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    grep -q -- '-std=c++20' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    mkdir -p "$WHEEL_DIR"
    (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
      "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$WHEEL_DIR.tmp" .)
    mv "$WHEEL_DIR.tmp"/mmcv-*.whl "$WHEEL_DIR"/ && rmdir "$WHEEL_DIR.tmp"
    rm -rf "$BUILD"
  fi
  step "install cached mmcv wheel from $WHEEL_DIR"
  "${PIP[@]}" install --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-*.whl
  "$PY" -c "import mmcv.ops; from mmcv.ops import nms, RoIAlign"
fi

step "install bnn_tasks (editable) and build its ONNX Runtime custom-op library"
"${PIP[@]}" install --quiet --no-deps --no-build-isolation -e "$REPO"

step "check the installation"
"$PY" -c "import bnn_tasks, mmdet, mmseg, onnxruntime; print('bnn_tasks', bnn_tasks.__version__, '| torch', __import__('torch').__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| onnxruntime', onnxruntime.__version__)" >&2
log "done: $VENV"
