#!/usr/bin/env bash
# Installs the Debian packages camelid needs and builds it (Release) into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${CAMELID_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)"
echo "built ./build/camelid"
