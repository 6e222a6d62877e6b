#!/usr/bin/env bash
# Fuzzing campaign for the native parsers (issue 10): each libFuzzer target runs from the
# seed corpus (fuzz/make-corpus.py) until 10^5 executions or FUZZ_SECONDS, whichever
# comes first, one process at a time (the machine is shared). Prints a Markdown table
# (executions, exec/s, coverage cov/ft, corpus size, crashes, peak RSS) for
# bench/RESULTS.md "### Native fuzzing". Crash inputs are kept in $FUZZ_OUT/<target>/;
# a fixed one goes to fuzz/regressions/<target>/.
#   FUZZ_SECONDS (default 180)  FUZZ_RUNS (default 100000)  FUZZ_OUT (default build-fuzz/campaign)
#   FUZZ_TARGETS (default: all built fuzz_* targets)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD:-build-fuzz}
seconds=${FUZZ_SECONDS:-180}
runs=${FUZZ_RUNS:-100000}
out=${FUZZ_OUT:-$build/campaign}
if [ ! -x "$build/fuzz_json" ]; then
  cmake -S . -B "$build" -DANOMALYNCD_FUZZ=ON -DANOMALYNCD_SELFTESTS=OFF -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target anomalyncd_fuzzers -j "${CMAKE_BUILD_PARALLEL_LEVEL:-1}"
fi
/usr/bin/python3 fuzz/make-corpus.py "$build/corpus" >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp}
targets=${FUZZ_TARGETS:-$(cd "$build" && ls fuzz_* | grep -v '\.' | tr '\n' ' ')}
echo "Fuzzing on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| target | executions | exec/s | cov | ft | corpus | crashes | peak RSS (MB) | time (s) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for target in $targets; do
  mkdir -p "$out/$target/corpus" "$out/$target/crashes"
  cp -n "$build/corpus/$target"/* "$out/$target/corpus/" 2>/dev/null || true
  log="$out/$target/run.log"
  start=$(date +%s)
  set +e
  (cd "$out/$target/crashes" && "$OLDPWD/$build/$target" -runs="$runs" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 \
    -print_final_stats=1 "$OLDPWD/$out/$target/corpus" >"$OLDPWD/$log" 2>&1)
  set -e
  took=$(($(date +%s) - start))
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rss=$(grep -oE 'stat::peak_rss_mb: +[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || echo "?")
  ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+' || echo "?")
  corp=$(echo "$last" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+' || echo "?")
  crashes=$(ls "$out/$target/crashes" | grep -cE '^(crash|leak|timeout|oom)-' || true)
  echo "| $target | $execs | $rate | $cov | $ft | $corp | $crashes | $rss | $took |"
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
