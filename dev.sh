#!/usr/bin/env bash
# Titan developer entry point. Needs only Python 3.11 (and apt for system packages).
#   ./dev.sh demo   set up and run the main job on the embedded default (paper replay)
#   ./dev.sh test   set up and run every gate: ruff, mypy --strict, pytest
set -euo pipefail
cd "$(dirname "$0")"

VENV="${TITAN_VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2; return 1; fi
}

apt_install() {
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@"
}

make_venv() {
  [ -x "$VENV/bin/python" ] && return 0
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3.11-venv
    "$PYTHON" -m venv "$VENV"
  fi
}

install() {
  make_venv
  local stamp="$VENV/.titan-installed" want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
}

ensure_mosquitto() {
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
}

case "${1:-}" in
  demo)
    install
    shift
    exec "$VENV/bin/titan" run --config config/default.toml "$@"
    ;;
  test)
    install
    ensure_mosquitto
    shift
    "$VENV/bin/ruff" check titan tests benchmarks
    "$VENV/bin/ruff" format --check titan tests benchmarks
    "$VENV/bin/mypy" titan
    exec "$VENV/bin/python" -m pytest -q "$@"
    ;;
  install)
    install
    ;;
  *)
    echo "usage: $0 demo|test|install" >&2
    exit 2
    ;;
esac
