#!/usr/bin/env bash
# Run a command inside the bnn_tasks environment, setting it up first if needed.
#   bash tools/run.sh python tools/main_job.py
#   bash tools/run.sh python -m pytest tests
# The set-up (tools/install.sh) is idempotent: on a warm machine it only re-checks stamps.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BNN_TASKS_VENV:-${BNN_TASKS_CACHE:-$HOME/.cache/bnn_tasks}/venv}"
bash "$REPO/tools/install.sh"
cd "$REPO"
export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV"
exec "$@"
