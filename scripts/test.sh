#!/usr/bin/env bash
# The whole test suite, real models and a real browser included. Creates the environment if missing.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "setup failed" >&2; exit 1; }
[ -f scripts/setup_browser.sh ] && { bash scripts/setup_browser.sh || { echo "browser setup failed" >&2; exit 1; }; }
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONUNBUFFERED=1
.venv/bin/python -m pytest -p no:cacheprovider --timeout=900 "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "FAILED: pytest collected no tests (exit 5)" >&2
  exit 1
fi
exit $rc
