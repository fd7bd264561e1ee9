#!/bin/sh
# The drlab image's entrypoint: run the service's command (from compose.yaml), adding
# `--time-scale $DRLAB_TIME_SCALE` when that variable is set and the command has no --time-scale
# of its own — the embedded runner appends the same option (DESIGN §4).
set -eu
if [ -n "${DRLAB_TIME_SCALE:-}" ]; then
  case " $* " in
    *" --time-scale "*) ;;
    *) set -- "$@" --time-scale "$DRLAB_TIME_SCALE" ;;
  esac
fi
exec "$@"
