#!/usr/bin/env bash
# Distributed training on one machine: bash tools/dist_train.sh CONFIG NPROC [train.py args]
# Uses torch.distributed.run; on CPU-only machines tools/train.py selects the gloo backend.
# Environment: PORT (default 29500), NNODES, NODE_RANK, MASTER_ADDR as for torch.distributed.run.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NPROC [tools/train.py arguments]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# one intra-op thread per process unless told otherwise: NPROC processes share the cores
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@"
