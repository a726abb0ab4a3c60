#!/usr/bin/env bash
# On the GPU machine (experiments/gpu/README.md has the calls). Steps:
#   receive N   keep the carried part N of CIFAR-100 outside the repo (it stays while warm)
#   setup       carried wheels -> /tmp/site; parts -> archive (sha256 checked) -> extracted
#   bench       the lease benchmark suite, under 3 minutes; JSON files to $OUT
#   train       [SD] Table 3's ResNet-20 row in the time left; table3.json to $OUT
# `all` = setup, bench, train. JAXKD_GPU (default /tmp/jaxkd_gpu) holds what persists
# between calls; set JAXKD_TINY=1 to rehearse on a CPU at tiny size.
set -euo pipefail
cd "$(dirname "$0")/../.."
G=${JAXKD_GPU:-/tmp/jaxkd_gpu}
OUT=${OUT:-$G/out}
mkdir -p "$G/parts" "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:$G/site${PYTHONPATH:+:$PYTHONPATH}"
export JAX_COMPILATION_CACHE_DIR="$G/jax_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=1
tiny=()
[ "${JAXKD_TINY:-0}" = 1 ] && tiny=(--tiny)

receive() { cp .gpu_data/part"$1" "$G/parts/"; [ -f .gpu_data/sha256 ] && cp .gpu_data/sha256 "$G/"; ls -l "$G/parts"; }

setup() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$G/site" .whl/*.whl
  if [ ! -d "$G/cifar-100-binary" ]; then
    cat "$G"/parts/part? > "$G/cifar-100-binary.tar.gz"
    [ "$(sha256sum "$G/cifar-100-binary.tar.gz" | cut -d' ' -f1)" = "$(cat "$G/sha256")" ] \
      || { echo "CIFAR-100 reassembled from $G/parts does not match its sha256" >&2; exit 1; }
    tar xzf "$G/cifar-100-binary.tar.gz" -C "$G" && rm "$G/cifar-100-binary.tar.gz"
  fi
  python3 -c "import jax, jaxkd; print('jax', jax.__version__, jax.devices())"
  nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv || true
}

bench() {
  local suite=lease
  [ "${JAXKD_TINY:-0}" = 1 ] && suite=lease_rehearsal
  python3 -m benchmarks.run --suite="$suite" --budget_s="${BENCH_BUDGET_S:-170}" \
    --out_dir="$G/bench" --json="$OUT/bench_suite.json" 2>&1 | tee "$OUT/bench.log" || true
  cp "$G"/bench/packing_resnet20*.json "$G"/bench/roofline_resnet56.json "$OUT/" 2>/dev/null || true
}

train() {
  python3 -m experiments.gpu.table3 --data="$G/cifar-100-binary" --bench="$G/bench" \
    --out="$OUT" --root="$G/runs" --budget_s="${TRAIN_BUDGET_S:-450}" "${tiny[@]}" \
    2>&1 | tee "$OUT/train.log"
}

case "${1:-}" in
  receive) receive "$2" ;;
  setup) setup ;;
  bench) bench ;;
  train) train ;;
  all) setup && bench && train ;;
  *) echo "usage: $0 receive N | setup | bench | train | all" >&2; exit 2 ;;
esac
