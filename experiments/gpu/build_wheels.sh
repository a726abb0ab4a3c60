#!/usr/bin/env bash
# Builds into .whl/ (git-ignored) the pure-Python wheels that the GPU machine's image lacks,
# so a device call can carry them (`carry: [".whl"]`, well under its 64 MiB):
#   jaxkd itself, ml-collections and tensorboardX (the image has jax 0.11.2 + CUDA 13, flax,
#   optax, orbax-checkpoint, chex, absl, numpy, pillow, tqdm, matplotlib, protobuf, PyYAML).
# With --tfds also tensorflow-datasets and what it needs beyond the image.
# On the device, first thing in the command:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site
# Usage: bash experiments/gpu/build_wheels.sh [--tfds]
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir -p .whl
# Versions: the newest set CI tests (constraints/newest-py312.txt), Python 3.12 as there.
lock=constraints/newest-py312.txt
pinned() { for n in "$@"; do grep -i "^${n}==" "$lock" || { echo "$n not in $lock" >&2; exit 1; }; done; }
names=(ml_collections tensorboardX)
if [ "${1:-}" = "--tfds" ]; then
  names+=(tensorflow-datasets importlib_resources array_record dm-tree immutabledict promise
          simple-parsing docstring_parser tensorflow-metadata googleapis-common-protos
          termcolor toml)
fi
mapfile -t wanted < <(pinned "${names[@]}")
# Wheels where the registry has them (pure, or cp312 manylinux for array_record, dm-tree) ...
python3 -m pip download -q --no-deps -d .whl --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_28_x86_64 --platform any --only-binary=:all: \
  $(printf '%s\n' "${wanted[@]}" | grep -iv '^promise==') 
# ... and pure-Python wheels built here from the sdists that have none (promise), and jaxkd.
for req in $(printf '%s\n' "${wanted[@]}" | grep -i '^promise==') .; do
  python3 -m pip wheel -q --no-deps -w .whl "$req"
done
# Every wheel must be pure Python or built for cp312 manylinux x86_64, which the image runs.
for w in .whl/*.whl; do
  case "$w" in *-none-any.whl|*cp312*manylinux*x86_64*.whl) ;;
    *) echo "not usable on the GPU image: $w" >&2; exit 1 ;; esac
done
du -sh .whl && ls .whl
