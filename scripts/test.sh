#!/usr/bin/env bash
# The one test command (README "Run the tests"; .ci/run runs exactly this).
# Installs what the tests need on a fresh Debian machine with Python 3.11, then lints,
# type-checks and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e '.[dev]'
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy
python3 -m pytest -q "$@"
