#!/usr/bin/env bash
# Runs every check and test of the workspace, as CI does.
# Installs the Debian packages it needs first (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "== cargo fmt"
cargo fmt --all --check

# `taskbell demo` is a feature (off in the `taskbell` that runs all day): every build and
# test here has it, as the end-to-end tests run it; clippy also checks the CLI without it.
features=(--features taskbell-cli/demo)

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked "${features[@]}" -- -D warnings
cargo clippy -p taskbell-cli --all-targets --locked -- -D warnings

echo "== packaging files are well-formed (macOS LaunchAgent, Windows logon task)"
python3 -c 'import sys, xml.dom.minidom as m; [m.parse(f) for f in sys.argv[1:]]' \
  packaging/macos/dev.taskbell.run.plist packaging/windows/taskbell-run.xml

echo "== GitHub workflows (schema, duplicate keys, zizmor)"
bash scripts/lint-workflows.sh

echo "== cargo build (the binaries the end-to-end tests run)"
cargo build --workspace --bins --locked "${features[@]}"
# The end-to-end tests run these very binaries, fresh from the build above, instead of
# building taskbell-cli and taskbell-server again on their own (a build of two packages
# unifies features differently from the workspace build, so it recompiles: ~2 min here).
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export TASKBELL_E2E_BIN_DIR="$target_dir/debug"

echo "== cargo nextest (unit, integration, end-to-end)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "${features[@]}"
  echo "== doctests"
  cargo test --workspace --locked --doc "${features[@]}"
else
  cargo test --workspace --locked --no-fail-fast "${features[@]}"
fi

if [ -x ui/tests/run.sh ]; then
  echo "== ui tests (headless Chromium)"
  ui/tests/run.sh
fi
