#!/usr/bin/env bash
# Regenerates the PNG icons from their SVG sources (icons/src/*.svg).
# The PNGs are committed, so building TaskBell never needs this script;
# run it after editing an SVG. Needs rsvg-convert (Debian: librsvg2-bin), icotool
# (icoutils) for the Windows .ico and png2icns (icnsutils) for the macOS .icns.
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

# Windows (.ico: 16 … 256) and macOS (.icns: 16 … 512) bundles.
command -v icotool >/dev/null || { echo "generate.sh: icotool missing (apt-get install icoutils)" >&2; exit 1; }
command -v png2icns >/dev/null || { echo "generate.sh: png2icns missing (apt-get install icnsutils)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for size in 16 24 32 48 64 128 256 512; do
  rsvg-convert -w "$size" -h "$size" src/app.svg -o "$tmp/$size.png"
done
icotool -c -o icon.ico "$tmp"/16.png "$tmp"/24.png "$tmp"/32.png "$tmp"/48.png "$tmp"/64.png "$tmp"/128.png "$tmp"/256.png
png2icns icon.icns "$tmp"/16.png "$tmp"/32.png "$tmp"/48.png "$tmp"/128.png "$tmp"/256.png "$tmp"/512.png >/dev/null
echo "generate.sh: icons written"
