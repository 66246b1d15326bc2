#!/usr/bin/env bash
# Builds (if needed) and runs every test. BUILD_DIR picks the build tree (default ./build);
# CAMELID_FIXTURES overrides where ../shared/fixtures is; CTEST_JOBS how many tests run at once
# (default: one per core).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${CAMELID_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"
cd "$BUILD_DIR"
ctest --output-on-failure -j"${CTEST_JOBS:-$(nproc)}" "$@"
