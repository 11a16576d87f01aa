#!/usr/bin/env bash
# Lints the GitHub workflows, which run only where the repository is hosted:
# - action-validator (npm): each file against the workflow JSON schema;
# - zizmor (PyPI): the workflow linter and security audit (offline rules);
# - PyYAML: no key is given twice in one mapping (YAML parsers keep the last one silently).
# The tools are pinned and installed under target/tools, nothing system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="target/tools"
mkdir -p "$tools"
if [ ! -x "$tools/py/bin/zizmor" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$tools/py" \
    zizmor==1.32.0 PyYAML==6.0.2
fi
if [ ! -x "$tools/node/node_modules/.bin/action-validator" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools/node" @action-validator/cli@0.6.0
fi
for f in .github/workflows/*.yml; do
  "$tools/node/node_modules/.bin/action-validator" "$f"
  echo "schema ok: $f"
done
PYTHONPATH="$tools/py" python3 - .github/workflows/*.yml <<'PY'
import sys
import yaml

class Strict(yaml.SafeLoader):
    pass

def mapping(loader, node, deep=False):
    keys = [k.value for k, _ in node.value]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SystemExit(f"{node.start_mark}: key(s) given twice: {', '.join(twice)}")
    return yaml.SafeLoader.construct_mapping(loader, node, deep)

Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        yaml.load(f, Strict)
    print(f"no duplicate keys: {path}")
PY
PYTHONPATH="$tools/py" "$tools/py/bin/zizmor" --offline --no-progress .github/workflows/
