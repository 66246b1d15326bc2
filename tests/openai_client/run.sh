#!/usr/bin/env bash
# ctest entry: starts `camelid serve` on a free loopback port and runs client_test.mjs against it.
# Exit 77 (skipped) when node or the openai package is unavailable, except under CI=true (fails).
set -u
# The fixtures directory: $CAMELID_FIXTURES at run time, else the one CMake was given.
bin=$1 model=${CAMELID_FIXTURES:-$2}/$3
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "$1"; [ "${CI:-}" = true ] && exit 1; exit 77; }
command -v node >/dev/null || skip "node not found"
if [ ! -d "$here/node_modules/openai" ]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || skip "npm install openai failed"
fi
. "$here/../serve_in_background.sh"
serve_in_background "$bin" "$model" --parallel 4 --ctx 256 --threads 2
# Tool-call replies recorded from the server's response pipeline (a random model never calls a
# tool): the client must parse them, whole and streamed.
rec=$(mktemp -d)
trap 'kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null; rm -f "$serve_log"; rm -rf "$rec"' EXIT
recorder=$(dirname "$bin")/tests/test_server
if [ -x "$recorder" ]; then
  CAMELID_RECORD_DIR=$rec CAMELID_FIXTURES=${CAMELID_FIXTURES:-$2} "$recorder" \
    --gtest_filter=ChoiceStream.RecordsToolCallRepliesForTheNpmClient >/dev/null || { echo "recording failed"; exit 1; }
fi
node "$here/client_test.mjs" "$url/v1" "$rec"
