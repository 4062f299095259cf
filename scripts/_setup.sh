# Shared set-up for scripts/example and scripts/test: sourced, not run.
# Makes .venv with the project installed (again only when pyproject.toml changed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
cd "$ROOT"

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "flask-convex: '$1' is required but not installed. $2" >&2
    exit 1
  }
}

setup_python() {
  need python3 "Install Python 3.11 or newer."
  need node "Install Node.js 20 or newer (the local Convex deployment runs on it)."
  need npm "Install npm (it installs the local Convex deployment's packages)."
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  local stamp="$VENV/.flask-convex-installed" want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[test,bench]"
    echo "$want" >"$stamp"
  fi
}

setup_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "flask-convex: install Debian's chromium (apt-get install chromium) for the browser tests." >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
}
