#!/usr/bin/env bash
# Re-resolves the two package sets CI installs exactly (`pip install -c <file>`), from the
# ranges in pyproject.toml:
#   constraints/ci-py311.txt      the oldest end: Python 3.11, the JAX stack (jax, jaxlib,
#                                 flax, optax, orbax-checkpoint, chex, ml-collections,
#                                 tensorflow-datasets) at its lower bounds (jax 0.10.2 is
#                                 also the last jax for 3.11);
#   constraints/newest-py312.txt  the newest end: Python 3.12, the newest versions the
#                                 registry serves inside the ranges.
# Then run `bash .ci/run`; raise a range's bound only once both sets pass.
# Usage: bash constraints/refresh.sh   (PY311=..., PY312=... to choose the interpreters)
set -euo pipefail
cd "$(dirname "$0")/.."
PY311=${PY311:-$(ls -d "$HOME"/.pyenv/versions/3.11*/bin/python | sort -V | tail -1)}
PY312=${PY312:-$(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python | sort -V | tail -1)}

lower_bounds() {  # name==lowest for the JAX stack's direct dependencies
  "$PY311" - <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                  for r in extra if not r.startswith("jaxkd")]
for req in reqs:
    m = re.match(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*>=\s*([^,;\s]+)", req)
    stack = {"jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "ml-collections",
             "tensorflow-datasets"}
    if m and m.group(1) in stack:
        print(f"{m.group(1)}=={m.group(3)}")
PY
}

resolve() {  # python, output file, extra pip arguments...
  local python=$1 out=$2 venv
  shift 2
  venv=$(mktemp -d)
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q -U pip
  "$venv/bin/pip" install -q -e ".[test]" "$@"
  "$venv/bin/pip" freeze --exclude-editable | grep -v '^jaxkd' > "$out"
  rm -rf "$venv"
}

lows=$(mktemp)
lower_bounds > "$lows"
resolve "$PY311" constraints/ci-py311.txt -c "$lows"
resolve "$PY312" constraints/newest-py312.txt
rm -f "$lows"
wc -l constraints/*.txt
