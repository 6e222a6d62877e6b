#!/usr/bin/env bash
# CI (issue 8): the CUDA build paths, on a machine without a GPU. Run after the normal
# build (build/, ANOMALYNCD_CUDA=AUTO, which compiles cpp/gpu/*.cu with nvcc when present).
#  1. cmake/cuda.cmake's three modes: OFF never looks; AUTO with a CUDA compiler that cannot
#     build the test kernel falls back to CPU-only with a message; ON with a missing or
#     broken compiler fails at configure time, naming it (a tiny project, ~10 s);
#  2. the core addon has the kernels (sm_75..sm_90 + PTX), links no shared CUDA runtime and
#     loads and answers "no device" here (the emulation self-test runs in test 40);
#  3. the libtorch-side CUDA source (cpp/gpu/attention_cuda.cu) through nvcc and the CUDA
#     branch of cpp/model/vit.cc, compile only, against libtorch 2.6's headers (Debian
#     trixie's libtorch-cuda-dev, unpacked by scripts/torch2-headers.sh), checking that every
#     torch/ATen/c10 header came from that tree, not from the system's 1.13.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
command -v nvcc >/dev/null || { echo "cuda-check: nvcc is not on the PATH" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. configure modes ---------------------------------------------------------------
mkdir -p "$tmp/p"
echo 'int f() { return 0; }' >"$tmp/p/x.cc"
cat >"$tmp/p/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(p LANGUAGES CXX)
add_library(anomalyncd_core_stages STATIC x.cc)
include($root/cmake/cuda.cmake)
CMAKE
printf '#!/bin/sh\necho "fake nvcc: broken on purpose" >&2\nexit 1\n' >"$tmp/fake-nvcc"
chmod +x "$tmp/fake-nvcc"
has() { grep -q "$2" <<<"$(tr '\n' ' ' <"$1" | tr -s ' ')"; }  # CMake wraps its messages
conf() { cmake -S "$tmp/p" -B "$tmp/b$1" "${@:2}" >"$tmp/log$1" 2>&1; }
conf 1 -DANOMALYNCD_CUDA=OFF || { cat "$tmp/log1"; exit 1; }
! grep -qi "cuda compiler" "$tmp/log1" || { echo "cuda-check: OFF looked for CUDA" >&2; exit 1; }
conf 2 -DANOMALYNCD_CUDA=AUTO -DCMAKE_CUDA_COMPILER="$tmp/fake-nvcc" || { cat "$tmp/log2"; exit 1; }
has "$tmp/log2" "CUDA kernels off (.*cannot build a test kernel" || { cat "$tmp/log2"; exit 1; }
if conf 3 -DANOMALYNCD_CUDA=ON -DCMAKE_CUDA_COMPILER="$tmp/fake-nvcc"; then
  echo "cuda-check: ON with a broken nvcc configured" >&2; exit 1
fi
has "$tmp/log3" "ANOMALYNCD_CUDA=ON: .*cannot build a test kernel" || { cat "$tmp/log3"; exit 1; }
if env -u CUDACXX PATH=/usr/bin:/bin cmake -S "$tmp/p" -B "$tmp/b4" -DANOMALYNCD_CUDA=ON >"$tmp/log4" 2>&1; then
  echo "cuda-check: ON without nvcc configured" >&2; exit 1
fi
has "$tmp/log4" "ANOMALYNCD_CUDA=ON: no CUDA compiler (nvcc) found" || { cat "$tmp/log4"; exit 1; }
echo "cuda-check: configure modes OFF / AUTO fallback / ON failures: ok"

# ---- 2. the built core addon ------------------------------------------------------------
core=build/Release/anomalyncd_core.node
grep -q "ANOMALYNCD_CUDA_KERNELS:INTERNAL=ON\|anomalyncd_gpu_kernels" build/CMakeCache.txt build/build.ninja build/Makefile 2>/dev/null ||
  { echo "cuda-check: the build has no CUDA kernels (nvcc found but AUTO fell back?)" >&2; exit 1; }
flags=$(grep -rhs "gencode\|arch=" build/CMakeFiles/anomalyncd_gpu_kernels.dir/flags.make build/build.ninja || true)
for a in 75 80 86 89 90; do
  grep -q "sm_$a" <<<"$flags" || { echo "cuda-check: no sm_$a in the kernel build flags" >&2; exit 1; }
done
grep -q "compute_90" <<<"$flags" || { echo "cuda-check: no compute_90 PTX" >&2; exit 1; }
kernels=$(nm -C build/libanomalyncd_gpu_kernels.a)  # (no `nm | grep -q`: SIGPIPE under pipefail)
grep -q "sweepKernel" <<<"$kernels" || { echo "cuda-check: no MEBin kernels were compiled" >&2; exit 1; }
# once the binding calls cpp/gpu (device selection), the addon carries the kernels
symbols=$(nm -C "$core")
if grep -q "anomalyncd::gpu::" <<<"$symbols"; then
  grep -q "sweepKernel" <<<"$symbols" || { echo "cuda-check: $core calls cpp/gpu but has no kernels" >&2; exit 1; }
fi
if grep -q "libcudart" <<<"$(readelf -d "$core")"; then echo "cuda-check: $core needs libcudart.so" >&2; exit 1; fi
node -e "
const m = require('./$core');
if (typeof m !== 'object') throw new Error('core addon did not load');
console.log('cuda-check: the core addon of the CUDA build loads without a GPU');"
echo "cuda-check: kernels for sm_75/80/86/89/90 + compute_90, static runtime: ok"

# ---- 3. libtorch 2.x CUDA side, compile only ----------------------------------------------
if [[ ! -f scripts/torch2-headers.sh ]]; then
  echo "cuda-check: SKIPPED the libtorch 2.x part: scripts/torch2-headers.sh (branch s8-device) is not merged yet" >&2
  exit 0
fi
bash scripts/torch2-headers.sh
inc=$root/build/torch2/usr/include
common=(-std=c++17 -D_GLIBCXX_USE_CXX11_ABI=1 -DANOMALYNCD_TORCH_CUDA=1 -I"$inc" -I"$inc/torch/csrc/api/include" -Icpp)
nvcc "${common[@]}" -gencode=arch=compute_90,code=sm_90 -MD -MF "$tmp/attn.d" -c cpp/gpu/attention_cuda.cu -o "$tmp/attn.o"
g++ "${common[@]}" -I/usr/local/cuda/include -fsyntax-only -Wno-deprecated-declarations -MD -MF "$tmp/vit.d" cpp/model/vit.cc
for d in "$tmp/attn.d" "$tmp/vit.d"; do
  bad=$(tr ' \\' '\n\n' <"$d" | grep -E '/(torch|ATen|c10|caffe2)/' | grep -v "^$inc/" || true)
  if [[ -n $bad ]]; then echo "cuda-check: headers from outside $inc:" >&2; echo "$bad" | head >&2; exit 1; fi
done
ver=$(grep -hE "define TORCH_VERSION_(MAJOR|MINOR) " "$inc/torch/csrc/api/include/torch/version.h" | awk '{print $3}' | paste -sd.)
echo "cuda-check: attention_cuda.cu (nvcc) and vit.cc's CUDA branch compile against libtorch $ver headers: ok"
