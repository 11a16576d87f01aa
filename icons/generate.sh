#!/usr/bin/env bash
# Regenerates the PNG icons from their SVG sources (icons/src/*.svg).
# The PNGs are committed, so building TaskBell never needs this script;
# run it after editing an SVG. Needs rsvg-convert (Debian: librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")"
command -v rsvg-convert >/dev/null || { echo "generate.sh: rsvg-convert missing (apt-get install librsvg2-bin)" >&2; exit 1; }

# Tray icons, one per state, 64x64 (the tray host scales them down).
for state in connected connecting offline signed-out paused; do
  rsvg-convert -w 64 -h 64 "src/$state.svg" -o "tray/$state.png"
done

# Application icons for the window, the .deb and the desktop entry.
rsvg-convert -w 32 -h 32 src/app.svg -o 32x32.png
rsvg-convert -w 128 -h 128 src/app.svg -o 128x128.png
rsvg-convert -w 256 -h 256 src/app.svg -o 128x128@2x.png
rsvg-convert -w 512 -h 512 src/app.svg -o icon.png
echo "generate.sh: icons written"
