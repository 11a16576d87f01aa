#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that building and testing TaskBell needs.
# Idempotent: does nothing when everything is present. Needs root (or sudo).
set -euo pipefail

PKGS=(
  # build
  build-essential pkg-config curl file
  # tray app (Tauri v2 on Linux)
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  # keyring (Secret Service over D-Bus) and notifications
  libdbus-1-dev dbus dbus-x11 gnome-keyring libsecret-tools
  # reference server tests
  redis-server
  # desktop end-to-end: X server, tray host, notification daemon, screenshots
  xvfb xauth dunst trayer x11-utils xdotool imagemagick webkit2gtk-driver procps
  # tray app ui/ tests (headless Chromium via playwright-core) and CJK glyphs in screenshots
  chromium nodejs fonts-wqy-microhei
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The ui/ tests need npm; a machine whose Node.js did not come from Debian has its own.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
