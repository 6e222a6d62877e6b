#!/usr/bin/env bash
# CI: compile cpp/model and cpp/train (and the libtorch-side CUDA integration) against
# libtorch 2.6's headers (Debian trixie libtorch-cuda-dev, unpacked, never installed),
# include-only (-fsyntax-only, no linking), and prove every libtorch header came from
# that tree. See cmake/torch2-check.cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/torch2-headers.sh
launcher=()  # no ccache: it does not cache -fsyntax-only or PCH builds
gen=()
if command -v ninja >/dev/null; then gen=(-G Ninja); fi
cmake -S cmake/torch2-check -B build/torch2-check "${gen[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/torch2-check --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
echo "torch2-check: passed in $((SECONDS - start)) s"
