#!/usr/bin/env bash
# Refreshes the htmx files flask-convex serves from its own static folder (no CDN).
# Pinned to major version 2: htmx.org's npm "latest" is 4.x, whose semantics differ.
# Usage: scripts/vendor-js.sh   (needs npm; writes flask_convex/static/)
set -euo pipefail

HTMX="htmx.org@2"
SSE="htmx-ext-sse@2"
static="$(cd "$(dirname "$0")/.." && pwd)/flask_convex/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v npm >/dev/null || { echo "vendor-js.sh: npm is required" >&2; exit 1; }

unpack() {  # $1 = package spec, $2 = folder name under $work
    local tarball
    tarball="$(cd "$work" && npm pack --silent "$1" | tail -n 1)"
    mkdir -p "$work/$2"
    tar -xzf "$work/$tarball" -C "$work/$2" --strip-components=1
}

unpack "$HTMX" htmx
unpack "$SSE" sse

cp "$work/htmx/dist/htmx.min.js" "$static/htmx.min.js"
cp "$work/htmx/LICENSE" "$static/htmx.LICENSE"
cp "$work/sse/dist/sse.min.js" "$static/htmx-ext-sse.min.js"
cp "$work/sse/LICENSE" "$static/htmx-ext-sse.LICENSE"

version() { node -p "require('$work/$1/package.json').version"; }
printf 'htmx.org %s\nhtmx-ext-sse %s\n' "$(version htmx)" "$(version sse)" > "$static/VENDORED"
cat "$static/VENDORED"
