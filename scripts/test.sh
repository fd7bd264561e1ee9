#!/usr/bin/env bash
# The one test command (README "Run the tests"; .ci/run runs exactly this).
# Installs what the tests need on a fresh Debian machine with Python 3.11, then lints,
# type-checks and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Independent implementations the tests talk to: SIPp (Debian sip-tester) for SIP, and the
# public genesys-workspace-client-js (npm) — the Workspace API client users point at drlab.
if ! command -v sipp >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq sip-tester >/dev/null
fi
if command -v npm >/dev/null 2>&1 && [ ! -d .drlab-tools/node_modules/genesys-workspace-client-js ]; then
  npm install --prefix .drlab-tools --no-audit --no-fund --no-save \
    genesys-workspace-client-js@9.0.1 >/dev/null
fi
export DRLAB_NODE_MODULES="$PWD/.drlab-tools/node_modules"

python3 -m pip install -q -e '.[dev]'
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy
python3 -m pytest -q "$@"
