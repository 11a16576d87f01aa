#!/usr/bin/env bash
# Runs TaskBell. With no server configured it starts the embedded demo backend
# (the reference server, in-process, with scripted activity) and signs in as the
# demo annotator. The tray app needs a desktop session ($DISPLAY or
# $WAYLAND_DISPLAY); without one the headless `taskbell demo` runs instead.
# On Linux the tray is `taskbell-tray` (no WebKit in the tray; the windows run
# in `taskbell-app --windows-for`, started on demand); it hands over to the
# all-in-one `taskbell-app` where only an XEmbed tray (trayer) exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -f src-tauri/Cargo.toml ]; then
  cargo build --release -p taskbell-app -p taskbell-tray
  target="${CARGO_TARGET_DIR:-target}/release"
  if [ "$(uname -s)" = Linux ]; then
    exec "$target/taskbell-tray" "$@"
  fi
  exec "$target/taskbell-app" "$@"
fi
exec cargo run --release -p taskbell-cli --features demo --bin taskbell -- demo "$@"
