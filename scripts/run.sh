#!/usr/bin/env bash
# Runs TaskBell. With no server configured it starts the embedded demo backend
# (the reference server, in-process, with scripted activity) and signs in as the
# demo annotator. The tray app needs a desktop session ($DISPLAY or
# $WAYLAND_DISPLAY); without one the headless `taskbell demo` runs instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -f src-tauri/Cargo.toml ]; then
  exec cargo run --release -p taskbell-app -- "$@"
fi
exec cargo run --release -p taskbell-cli --features demo --bin taskbell -- demo "$@"
