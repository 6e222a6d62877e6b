#!/usr/bin/env bash
# Leak check of the native self-tests (issue 10): builds test/native/*_selftest.cc and the
# stages they test with AddressSanitizer (LeakSanitizer on at exit) in build-asan/, runs
# each with the arguments test/00-native-selftests uses, and fails on any ASan report or
# leak not covered by test/native/lsan.supp (one-time allocations of libtorch, OpenCV and
# OpenBLAS, which are not ours and not freed at exit by design).
#   LEAK_CHECK_MODEL=1   also model_selftest and augment_selftest (compiles every libtorch
#                        stage with ASan: ~20 CPU-minutes more; without it, the OpenCV-only
#                        self-tests: mebin_selftest, crop_selftest)
#   LEAK_CHECK_BUILD     build folder (default build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LEAK_CHECK_BUILD:-build-asan}
model=${LEAK_CHECK_MODEL:-0}
flags="-fsanitize=address -fno-omit-frame-pointer -g -O1"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANOMALYNCD_WITH_MODEL=$([ "$model" = 1 ] && echo ON || echo OFF) \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address \
  "${launcher[@]}" >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
targets=(mebin_selftest crop_selftest)
[ "$model" = 1 ] && targets+=(model_selftest augment_selftest)
cmake --build "$build" --target "${targets[@]}" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export LSAN_OPTIONS="suppressions=$PWD/test/native/lsan.supp:print_suppressions=1"
declare -A args=(
  [mebin_selftest]="3000"
  [crop_selftest]="test/fixtures/crop_goldens.txt"
  [model_selftest]="test/fixtures/vit"
  [augment_selftest]="test/fixtures/augment_goldens.txt"
)
status=0
for t in "${targets[@]}"; do
  log="$build/$t.leak.log"
  if "$build/$t" ${args[$t]} >"$log" 2>&1 && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)' "$log"; then
    supp=$(awk '/Suppressions used:/ {f = 1; next} f && $1 ~ /^[0-9]+$/ {n += $1; b += $2} END {printf "%d suppressed leaks, %d bytes", n, b}' "$log")
    echo "leak-check: $t: clean ($(grep -oE 'OK: [0-9]+ checks, 0 failures' "$log" || echo 'no summary')); $supp"
  else
    status=1
    grep -E 'ERROR: |SUMMARY: ' "$log" | head -5
    echo "leak-check: $t: FAILED (log: $log)" >&2
  fi
done
exit $status
