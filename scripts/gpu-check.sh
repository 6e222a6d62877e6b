#!/usr/bin/env bash
# The GPU machine's check and bench (issue 8, item 7), run there from the repository root:
#   bash scripts/gpu-check.sh            ($OUT set by the device tool; else ./gpu-check-out)
# Needs: nvcc, cmake, ninja and a Python torch with CUDA (its CMake config); gpu-data/
# prepared here by scripts/gpu-data.sh and carried. No Node, no N-API, no OpenCV.
# Builds tools/gpu-check (cpp/ stages + the CUDA kernels, sm_90 only there: the other
# architectures are compiled by CI) and runs it: GPU vs CPU checks (MEBin identical, the
# attention op, an MGViT forward, one training step) and timings with CUDA events.
# Writes $OUT/gpu-results.md (a section for bench/RESULTS.md), build.log and run.log.
# Exit status: the program's (1 when a check failed). Budget: <= 5 minutes, build included.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
data="${GPU_DATA:-gpu-data}"
if [[ ! -d $data/maps ]]; then
  echo "gpu-check: no $data/maps: run scripts/gpu-data.sh on the dev machine and carry gpu-data" >&2
  exit 2
fi
start=$SECONDS
nvidia-smi -L 2>&1 | tee "$OUT/run.log" || true
prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
build="${GPU_CHECK_BUILD:-/tmp/anomalyncd-gpu-check}"
cmake -S tools/gpu-check -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}" 2>&1 | tee "$OUT/build.log"
ninja -C "$build" -j"${JOBS:-16}" 2>&1 | tee -a "$OUT/build.log"
echo "gpu-check: build took $((SECONDS - start)) s" | tee -a "$OUT/run.log"
set +e
timeout "${RUN_TIMEOUT:-210}" "$build/gpu-check" "$data" "$OUT/gpu-results.md" 2>&1 | tee -a "$OUT/run.log"
rc=${PIPESTATUS[0]}
set -e
echo "gpu-check: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/run.log"
exit "$rc"
