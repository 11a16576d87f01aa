#!/usr/bin/env bash
# ui/ tests in headless Chromium. Installs the test's npm dependency (playwright-core,
# pinned in package-lock.json) and uses Debian's chromium; never downloads a browser.
set -euo pipefail
cd "$(dirname "$0")"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "ui tests: $CHROMIUM not found (apt-get install chromium, or run scripts/install-deps.sh)" >&2
  exit 1
fi
export CHROMIUM PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error
node --test --test-concurrency=1 ui.test.mjs
