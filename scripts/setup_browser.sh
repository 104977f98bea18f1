#!/usr/bin/env bash
# Installs what the browser tests (tests/browser) need: Debian's chromium and the playwright
# Python client. Idempotent. Never runs `playwright install`: that downloads a browser build,
# which cannot be fetched here; playwright drives /usr/bin/chromium instead.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WORKBENCH_VENV:-.venv}
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends chromium
fi
"$VENV/bin/python" -c "import playwright" 2>/dev/null || "$VENV/bin/pip" install -q playwright
/usr/bin/chromium --version
