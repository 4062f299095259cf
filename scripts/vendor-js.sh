#!/usr/bin/env bash
# Refreshes the JavaScript flask-convex serves from its own static folder (no CDN).
# - htmx, pinned to major version 2: htmx.org's npm "latest" is 4.x, whose semantics differ.
# - the official Convex browser client, at the exact `convex` version the local deployment
#   pins (flask_convex/local/server/package.json), so both sides speak the same protocol:
#   its `convex/browser` entry (what dist/browser.bundle.js holds) plus `convexToJson` and
#   `jsonToConvex` from `convex/values` (the page's change digest needs the client's own
#   encoding, which the prebuilt bundle does not export), bundled and minified by the
#   esbuild the package depends on, as the global `convex`.
# Usage: scripts/vendor-js.sh   (needs npm and node; writes flask_convex/static/)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
static="$root/flask_convex/static"
HTMX="htmx.org@2"
CONVEX="convex@$(node -p "require('$root/flask_convex/local/server/package.json').dependencies.convex")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v npm >/dev/null || { echo "vendor-js.sh: npm is required" >&2; exit 1; }

tarball="$(cd "$work" && npm pack --silent "$HTMX" | tail -n 1)"
mkdir -p "$work/htmx"
tar -xzf "$work/$tarball" -C "$work/htmx" --strip-components=1
cp "$work/htmx/dist/htmx.min.js" "$static/htmx.min.js"
cp "$work/htmx/LICENSE" "$static/htmx.LICENSE"

mkdir -p "$work/convex"
(cd "$work/convex" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "$CONVEX")
printf '%s\n' 'export * from "convex/browser";' 'export { convexToJson, jsonToConvex } from "convex/values";' \
    > "$work/convex/entry.mjs"
"$work/convex/node_modules/.bin/esbuild" "$work/convex/entry.mjs" --bundle --minify \
    --format=iife --global-name=convex --platform=browser --target=es2020 --legal-comments=none \
    --outfile="$static/convex.min.js" --log-level=warning
cp "$work/convex/node_modules/convex/LICENSE" "$static/convex.LICENSE"

version() { node -p "require('$1/package.json').version"; }
printf 'htmx.org %s\nconvex %s\n' "$(version "$work/htmx")" \
    "$(version "$work/convex/node_modules/convex")" > "$static/VENDORED"
cat "$static/VENDORED"
