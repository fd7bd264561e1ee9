#!/usr/bin/env bash
# The one test command (README "Run the tests"; .ci/run runs exactly this).
# Installs what the tests need on a fresh Debian machine with Python 3.11, then lints,
# type-checks and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Independent implementations the tests talk to: SIPp (Debian sip-tester) for SIP, and the
# public genesys-workspace-client-js (npm) — the Workspace API client users point at drlab —
# and Debian's chromium for the dashboard's and the reports' browser tests (tests/ui).
if ! command -v sipp >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq sip-tester chromium >/dev/null
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
# The layering contracts of pyproject.toml [tool.importlinter] (ARCHITECTURE.md "Layers").
python3 -c 'import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))'
if [ $# -gt 0 ]; then exec python3 -m pytest -q "$@"; fi
# Both groups by default; DRLAB_TEST_GROUPS=containers (or =default) runs one of them.
groups=" ${DRLAB_TEST_GROUPS:-default containers} "
case "$groups" in *" default "*) python3 -m pytest -q -m "not containers" ;; esac
case "$groups" in *" containers "*) ;; *) exit 0 ;; esac

# The container group (tests/containers): the lab in real Docker containers, killed for real.
# A Docker engine is brought up when none answers or the base image is missing: with
# ../shared/tools/docker-engine on drlab machines, else with scripts/docker-engine.sh (apt
# installs docker.io, dockerd starts with no bridge and no iptables, debootstrap builds the base
# image drlab-base:bookworm). An engine that cannot be brought up here (packages, dockerd, the
# base image) is a loud warning with the logs' tails, and the group skips; a drlab image that
# does not build fails CI.
docker_warning() {
  printf '\n!!! WARNING: %s\n!!! the container tests (tests/containers) will SKIP\n\n' "$*" >&2
}
docker_answers() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
base_image=drlab-base:bookworm
engine_tool=../shared/tools/docker-engine
[ -x "$engine_tool" ] || engine_tool=scripts/docker-engine.sh
if ! docker_answers || ! docker image inspect "$base_image" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    started=$(date +%s)
    engine_status=0
    bash "$engine_tool" up || engine_status=$?
    if [ "$engine_status" != 0 ]; then
      # The machine, not drlab, failed (packages, dockerd, the base image's debootstrap): the
      # rest of CI must still count. What failed is printed; a drlab image that does not build
      # still fails CI below.
      docker_warning "$engine_tool up failed (exit $engine_status) after $(( $(date +%s) - started )) s"
      for log in /var/log/drlab-dockerd.log /tmp/drlab-debootstrap.log; do
        if [ -f "$log" ]; then echo "--- tail of $log" >&2; tail -n 20 "$log" >&2; fi
      done
    else
      echo "test.sh: Docker engine ready in $(( $(date +%s) - started )) s" >&2
    fi
  elif docker_answers; then
    base_image=python:3.11-slim  # not Debian: a normal public base, pulled by Docker
  else
    docker_warning "no Docker engine answers and this is not a Debian machine: install Docker"
  fi
fi
if docker_answers && { [ "$base_image" != drlab-base:bookworm ] \
    || docker image inspect "$base_image" >/dev/null 2>&1; }; then
  started=$(date +%s)
  rm -rf .drlab/wheelhouse
  python3 -m pip wheel -q -w .drlab/wheelhouse .
  docker build -q --network host --build-arg BASE_IMAGE="$base_image" -t drlab:latest . >/dev/null
  echo "test.sh: image drlab:latest built from $base_image in $(( $(date +%s) - started )) s" >&2
fi
python3 -m pytest -q -m containers tests/containers
