#!/usr/bin/env bash
# ctest entry: starts `camelid serve` on a free loopback port and drives the chat page at GET /
# in headless Chromium (chat_page_test.py, selenium + chromedriver). Without chromium,
# chromedriver or python3-selenium it exits 77 (skipped), except under CI=true, where it fails.
set -u
# Debian's python3, where python3-selenium lives (another python3 may come first on PATH).
bin=$1 model=${CAMELID_FIXTURES:-$2}/$3
here=$(cd "$(dirname "$0")" && pwd)
missing=""
command -v chromium >/dev/null || missing+=" chromium"
command -v chromedriver >/dev/null || missing+=" chromium-driver"
/usr/bin/python3 -c "import selenium" 2>/dev/null || missing+=" python3-selenium"
if [ -n "$missing" ]; then
  echo "missing:$missing (scripts/install-deps.sh installs them)"
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi
log=$(mktemp)
# A long context and no token limit: the page's Stop button has a reply worth stopping.
"$bin" serve -m "$model" --port 0 --parallel 2 --ctx 16384 --threads 2 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 300); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$log" | head -1)
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "server did not start"; cat "$log"; exit 1; }
/usr/bin/python3 "$here/chat_page_test.py" "$url" || { echo "--- server log"; tail -20 "$log"; exit 1; }
