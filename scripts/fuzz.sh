#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into ./build-fuzz and runs each for a while.
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET] [fuzz_target ...]     (default: 20 s, every target)
# Seeds: fuzz/corpus/<target>/ plus the fixture files on the target's `// seeds:` line. What a run
# learns stays in build-fuzz/corpus/<target>/ (so long runs resume); crashing inputs land in
# build-fuzz/crashes/<target>/: copy each into fuzz/corpus/<target>/ once fixed, where the Release
# and sanitizer test suites replay it. Exit status 1 if any target crashed. Long runs:
#   ./scripts/fuzz.sh 3600 fuzz_chat_template
# FUZZ_JOBS targets run at once (default: one per core).
# FUZZ_BUILD_DIR picks another tree configured with -DCAMELID_FUZZ=ON (CI reuses its sanitizer
# build, which has both the tests and the libFuzzer targets).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}; shift || true
fixtures=${CAMELID_FIXTURES:-$(cd .. && pwd)/shared/fixtures}

./scripts/install-deps.sh clang

bd=${FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$bd/CMakeCache.txt" ]; then
  cmake -S . -B "$bd" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCAMELID_FUZZ=ON -DCAMELID_TESTS=OFF -DCAMELID_BENCH=OFF -DCAMELID_FIXTURES="$fixtures" >/dev/null
fi
cmake --build "$bd" -j"$(nproc)" --target fuzz_all

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(cd fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//'))
jobs=${FUZZ_JOBS:-$(nproc)}  # targets fuzzed at once, one core each

# Runs one target; leaves its summary line in $bd/$t.summary and its exit status in $bd/$t.rc.
fuzz_one() {
  local t=$1 corpus=$bd/corpus/$1 crashes=$bd/crashes/$1 seeddir=$bd/seeds/$1 log=$bd/$1.log rc=0
  mkdir -p "$corpus" "$crashes"
  local seeds=()
  [ -d "fuzz/corpus/$t" ] && seeds+=("fuzz/corpus/$t")
  for s in $(sed -n 's|^// seeds:||p' "fuzz/$t.cpp"); do seeds+=("$fixtures/$s"); done
  # Seed files may be directories or single files; libFuzzer wants directories of inputs.
  rm -rf "$seeddir"; mkdir -p "$seeddir"
  for s in "${seeds[@]}"; do
    if [ -d "$s" ]; then cp "$s"/* "$seeddir"/ 2>/dev/null || true; else cp "$s" "$seeddir"/; fi
  done
  CAMELID_FIXTURES="$fixtures" OMP_NUM_THREADS=1 "$bd/fuzz/$t" "$corpus" "$seeddir" \
    -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 \
    -artifact_prefix="$crashes/" >"$log" 2>&1 || rc=$?
  local execs rate n_crash
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  n_crash=$(find "$crashes" -type f | wc -l)
  printf '%-28s %12s %10s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$n_crash" > "$bd/$t.summary"
  [ "$rc" -ne 0 ] || [ "$n_crash" -eq 0 ] || rc=1
  echo "$rc" > "$bd/$t.rc"
  echo "== $t: ${secs} s, exit $rc"
}

for t in "${targets[@]}"; do
  rm -f "$bd/$t.rc" "$bd/$t.summary"  # a target that dies before writing them fails below, not passes on stale files
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait

status=0
printf '%-28s %12s %10s %8s\n' target executions exec/s crashes > "$bd/summary.txt"
for t in "${targets[@]}"; do
  cat "$bd/$t.summary" >> "$bd/summary.txt" 2>/dev/null || true
  if [ "$(cat "$bd/$t.rc" 2>/dev/null || echo 1)" -ne 0 ]; then
    status=1
    echo "!! $t failed; last lines of $bd/$t.log:"; tail -40 "$bd/$t.log"
  fi
done
cat "$bd/summary.txt"
exit $status
