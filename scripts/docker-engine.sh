#!/usr/bin/env bash
# A Docker engine for the container tests on a fresh Debian machine (root or sudo, apt only): what
# ../shared/tools/docker-engine does on drlab machines, kept here so CI runs the container group
# wherever the repository is cloned (scripts/test.sh uses the shared tool when it is there).
#
#   scripts/docker-engine.sh up       install docker.io docker-compose debootstrap, start dockerd,
#                                     build the base image drlab-base:bookworm
#   scripts/docker-engine.sh down     stop the dockerd this script started
#   scripts/docker-engine.sh status
#
# The rules the lab keeps (DESIGN §4): dockerd runs with no bridge and no iptables rules
# (--bridge=none --iptables=false --ip-masq=false), every service uses `network_mode: host` on its
# own loopback address; no image is pulled from a registry — the base image (Debian bookworm
# minbase + python3, python3-venv, ca-certificates, procps) is built with debootstrap from the
# machine's own Debian mirror and `docker import`.
#
# Exit status: 0 ready; 3 the engine cannot run on this machine (dockerd installed but does not
# come up: no privileges, no cgroups...) — the caller may skip the container tests with a warning;
# anything else is a failure to fix (packages not installable, the base image not buildable).
set -euo pipefail
BASE_IMAGE=${DRLAB_BASE_IMAGE:-drlab-base:bookworm}
PIDFILE=/run/drlab-dockerd.pid
DOCKERD_LOG=/var/log/drlab-dockerd.log
CANNOT_RUN=3
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
log() { printf 'docker-engine.sh: %s\n' "$*" >&2; }
as_root() { $SUDO "$@"; }
answers() { command -v docker >/dev/null 2>&1 && as_root docker info >/dev/null 2>&1; }

debian_mirror() {
  # The first Debian (non-security) mirror of the apt sources, one-line or deb822 format.
  local uri
  uri=$(grep -rhE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -i debian | grep -vi security | head -n1 \
        | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
        | awk '{print $1}') || true
  [ -n "$uri" ] || { log "no Debian mirror in the apt sources; set one up (apt)"; exit 1; }
  printf '%s\n' "$uri"
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing ${missing[*]}"
  # Keep the package's own service from starting a dockerd with a bridge network and iptables
  # rules: a policy-rc.d answering 101 is Debian's "do not start services while installing".
  local policy=/usr/sbin/policy-rc.d placed=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 0755 "$policy"
    placed=1
  fi
  local status=0
  as_root apt-get update -qq >/dev/null || status=$?
  if [ "$status" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null || status=$?
  fi
  [ -z "$placed" ] || as_root rm -f "$policy"
  [ "$status" = 0 ] || { log "apt-get could not install ${missing[*]} (exit $status)"; exit 1; }
}

daemon_up() {
  if answers; then log "dockerd already answering"; return 0; fi
  log "starting dockerd (no bridge, no iptables)"
  # setsid: the daemon outlives the CI step's shell and its process group.
  $SUDO setsid dockerd --bridge=none --iptables=false --ip-masq=false \
      --host unix:///var/run/docker.sock >"$DOCKERD_LOG" 2>&1 </dev/null &
  echo $! | as_root tee "$PIDFILE" >/dev/null
  for _ in $(seq 1 120); do
    answers && return 0
    as_root kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.5
  done
  log "dockerd did not come up; the last lines of $DOCKERD_LOG:"
  tail -n 15 "$DOCKERD_LOG" >&2 || true
  exit "$CANNOT_RUN"
}

base_image() {
  if as_root docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE present"
    return 0
  fi
  local root mirror
  mirror=$(debian_mirror)
  root=$(mktemp -d /tmp/drlab-rootfs.XXXXXX)
  log "building $BASE_IMAGE with debootstrap from $mirror (about a minute)"
  if ! as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,procps \
      bookworm "$root" "$mirror" >/tmp/drlab-debootstrap.log 2>&1; then
    log "debootstrap failed; the last lines of /tmp/drlab-debootstrap.log:"
    tail -n 15 /tmp/drlab-debootstrap.log >&2 || true
    as_root rm -rf "$root"
    exit 1
  fi
  as_root tar -C "$root" -c . | as_root docker import - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$root"
}

case "${1:-up}" in
  up)
    install_packages
    daemon_up
    base_image
    log "ready: base image $BASE_IMAGE, network_mode host only"
    ;;
  down)
    if [ -f "$PIDFILE" ]; then
      as_root kill "$(cat "$PIDFILE")" 2>/dev/null || true
      as_root rm -f "$PIDFILE"
      log "dockerd stopped"
    else
      log "no dockerd started by this script"
    fi
    ;;
  status)
    as_root docker info --format 'server {{.ServerVersion}}, {{.Containers}} containers' \
      2>/dev/null || echo "no docker daemon"
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
