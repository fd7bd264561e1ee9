#!/usr/bin/env bash
# Refreshes the UI's vendored front-end package (emulator/ui/vendor) from the npm registry.
# The dashboard and the HTML reports load it from the lab itself or inline it, never from a CDN,
# so a report opens offline. Bump VERSION, run this, and commit what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=8.5.4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --no-save "vis-timeline@$VERSION" >/dev/null
src="$work/node_modules/vis-timeline"
dest=emulator/ui/vendor/vis-timeline
mkdir -p "$dest"
cp "$src/standalone/umd/vis-timeline-graph2d.min.js" "$src/styles/vis-timeline-graph2d.min.css" \
  "$src/LICENSE.md" "$src/LICENSE.MIT.txt" "$src/LICENSE.Apache-2.0.txt" "$dest/"
echo "$VERSION" >"$dest/VERSION"
echo "vendored vis-timeline $VERSION into $dest"
