#!/usr/bin/env bash
# Prepares gpu-data/ (git-ignored) for scripts/gpu-check.sh on the GPU machine, which has
# no ../shared: every MTD test mask turned into a derived anomaly map (blurred ground truth
# over a textured background, longest side <= 256 px) as uint8 .npy, about 15 MiB.
# Needs the normal build (build/gpu_emulation_selftest). Name gpu-data in the run's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=build/gpu_emulation_selftest
mtd="${MTD_DIR:-../shared/data/mtd}"
[[ -x $exe ]] || { echo "gpu-data: $exe is missing: build first (npx cmake-js compile)" >&2; exit 1; }
[[ -d $mtd ]] || { echo "gpu-data: no MTD at $mtd (set MTD_DIR)" >&2; exit 1; }
rm -rf gpu-data
"$exe" --write-npy "$mtd" gpu-data/maps
du -sh gpu-data
