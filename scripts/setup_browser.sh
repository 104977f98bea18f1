#!/usr/bin/env bash
# Installs what the browser tests (tests/browser) need: Debian's chromium and the playwright
# Python client. Idempotent. Never runs `playwright install`: that downloads a browser build,
# which cannot be fetched here; playwright drives /usr/bin/chromium instead.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WORKBENCH_VENV:-.venv}
# A Japanese font too, so screenshots of Japanese items show text rather than boxes.
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi ipagothic; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends chromium fonts-ipafont-gothic
fi
"$VENV/bin/python" -c "import playwright" 2>/dev/null || "$VENV/bin/pip" install -q playwright
/usr/bin/chromium --version
