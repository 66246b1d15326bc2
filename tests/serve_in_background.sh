# Sourced by the ctest scripts that drive a real server (openai_client/run.sh, web/run.sh):
#   serve_in_background CAMELID_BINARY MODEL [serve flags...]
# starts `camelid serve` on a free loopback port, sets $url (http://HOST:PORT) once it listens
# and stops it when the script exits; exits 1 with the server's output if it does not start.
serve_in_background() {
  local bin=$1 model=$2
  shift 2
  serve_log=$(mktemp)
  "$bin" serve -m "$model" --port 0 "$@" >"$serve_log" 2>&1 &
  serve_pid=$!
  trap 'kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null; rm -f "$serve_log"' EXIT
  url=""
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://[0-9.]*:[0-9]*' "$serve_log" | head -1)
    [ -n "$url" ] && return 0
    kill -0 $serve_pid 2>/dev/null || { cat "$serve_log"; exit 1; }
    sleep 0.1
  done
  echo "server did not start"; cat "$serve_log"; exit 1
}
