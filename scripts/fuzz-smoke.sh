#!/usr/bin/env bash
# CI smoke of the libFuzzer harnesses (issue 10): builds them with clang-14
# (-fsanitize=fuzzer,address,undefined; cmake/fuzz.cmake), replays every regression input
# (fuzz/regressions/<target>/), then runs each target from the seed corpus
# (fuzz/make-corpus.py) for a few thousand executions. Any crash, sanitizer report,
# leak or unexpected exception fails the script. The long campaign is bench/fuzz.sh.
#   FUZZ_RUNS (default 3000)   executions per target
#   FUZZ_BUILD (default build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${FUZZ_RUNS:-3000}
build=${FUZZ_BUILD:-build-fuzz}
started=$(date +%s)
if ! command -v clang++-14 >/dev/null; then
  echo "fuzz-smoke: clang++-14 is missing (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi
cmake -S . -B "$build" -DANOMALYNCD_FUZZ=ON -DANOMALYNCD_SELFTESTS=OFF -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" --target anomalyncd_fuzzers -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
built=$(date +%s)
/usr/bin/python3 fuzz/make-corpus.py "$build/corpus" >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  target=$(basename "$bin")
  if [ -d "fuzz/regressions/$target" ] && [ -n "$(ls -A "fuzz/regressions/$target")" ]; then
    (cd "$work" && "$OLDPWD/$bin" -rss_limit_mb=4096 "$OLDPWD"/fuzz/regressions/"$target"/* >"$work/$target.regress.log" 2>&1) ||
      { tail -40 "$work/$target.regress.log"; echo "fuzz-smoke: $target fails on a regression input" >&2; exit 1; }
  fi
  mkdir -p "$work/$target"
  cp "$build/corpus/$target"/* "$work/$target/" 2>/dev/null || true
  (cd "$work" && "$OLDPWD/$bin" -runs="$runs" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 "$work/$target" >"$work/$target.log" 2>&1) ||
    { tail -60 "$work/$target.log"; echo "fuzz-smoke: $target crashed (input under $work is lost; rerun bench/fuzz.sh)" >&2; exit 1; }
  echo "fuzz-smoke: $target: $(grep -oE 'stat::number_of_executed_units: [0-9]+' "$work/$target.log" | grep -oE '[0-9]+') runs, $(grep -oE 'cov: [0-9]+' "$work/$target.log" | tail -1), peak RSS $(grep -oE 'peak_rss_mb: +[0-9]+' "$work/$target.log" | grep -oE '[0-9]+') MB"
done
echo "fuzz-smoke: build $((built - started)) s, runs $(($(date +%s) - built)) s"
