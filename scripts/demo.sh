#!/usr/bin/env bash
# The main job: set up if needed, then produce reports/demo/ offline with the bundled local models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True
exec .venv/bin/workbench report "$@"
