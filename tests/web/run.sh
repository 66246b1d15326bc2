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
. "$here/../serve_in_background.sh"
# A long context and no token limit: the page's Stop button has a reply worth stopping.
serve_in_background "$bin" "$model" --parallel 2 --ctx 16384 --threads 2
/usr/bin/python3 "$here/chat_page_test.py" "$url" || { echo "--- server log"; tail -20 "$serve_log"; exit 1; }
