#!/usr/bin/env bash
# Here, before a GPU lease: the wheels the device image lacks (.whl/) and CIFAR-100 cut into
# three parts that each fit one device call beside the working tree (.gpu_data/, ignored).
# Usage: bash experiments/gpu/prepare.sh [path/to/cifar-100-binary.tar.gz]
set -euo pipefail
cd "$(dirname "$0")/../.."
archive=${1:-../shared/data/cifar100/cifar-100-binary.tar.gz}
bash experiments/gpu/build_wheels.sh
rm -rf .gpu_data && mkdir -p .gpu_data
split -n 3 -d -a 1 "$archive" .gpu_data/part
sha256sum "$archive" | cut -d' ' -f1 > .gpu_data/sha256
tree_mib=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
for p in .gpu_data/part?; do
  total=$(( (tree_mib + $(stat -c %s "$p") + $(du -cb .whl | tail -1 | cut -f1)) / 1048576 ))
  echo "$p: $(( $(stat -c %s "$p") / 1048576 )) MiB; with the tree and .whl ${total} MiB (limit 64)"
  [ "$total" -lt 64 ] || { echo "too large for one device call" >&2; exit 1; }
done
