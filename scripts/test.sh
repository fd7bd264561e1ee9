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
if [ $# -gt 0 ]; then exec python3 -m pytest -q "$@"; fi
python3 -m pytest -q -m "not containers"

# The container group (tests/containers): the lab in real Docker containers, killed for real.
# A Docker engine is brought up when none answers (on drlab CI machines with
# ../shared/tools/docker-engine, relative to the repository); a missing or broken Docker setup is
# a loud warning and the group skips — it never blocks the rest of CI. A broken image build fails.
docker_warning() {
  printf '\n!!! WARNING: %s\n!!! the container tests (tests/containers) will SKIP\n\n' "$*" >&2
}
docker_answers() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
engine_tool=../shared/tools/docker-engine
if ! docker_answers; then
  if [ -x "$engine_tool" ]; then
    "$engine_tool" up || docker_warning "$engine_tool up failed"
  else
    docker_warning "no Docker engine answers and $engine_tool is absent: install Docker"
  fi
fi
if docker_answers; then
  base_image=python:3.11-slim
  if docker image inspect drlab-base:bookworm >/dev/null 2>&1; then base_image=drlab-base:bookworm; fi
  rm -rf .drlab/wheelhouse
  python3 -m pip wheel -q -w .drlab/wheelhouse .
  docker build -q --network host --build-arg BASE_IMAGE="$base_image" -t drlab:latest . >/dev/null
fi
python3 -m pytest -q -m containers tests/containers
