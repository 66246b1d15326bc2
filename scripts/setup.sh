#!/usr/bin/env bash
# Installs the Debian packages camelid needs and builds the camelid binary (Release) into ./build:
# the binary alone, so the first command is quick; ./scripts/test.sh builds the tests too.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${CAMELID_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)" --target camelid
echo "built ./build/camelid"
