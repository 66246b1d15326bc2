#!/usr/bin/env bash
# Serving throughput side by side: `camelid serve` and llama.cpp's `llama-server` on the same GGUF
# file, the same threads, slots, context per slot and f16 KV cache, driven by bench_server_load
# with 1, 16 and 64 concurrent streams (/v1/completions, --ignore-eos so both write max-tokens
# tokens). Prints one JSON line per server and stream count.
#   bench/serve_vs_llamacpp.sh MODEL.gguf LLAMA_SERVER [BUILD_DIR] [MAX_TOKENS] [greedy|sampled]
# greedy (the default): temperature 0. sampled: temperature 0.8 with llama-server's default chain
# spelled out in every request (top_k 40, top_p 0.95, min_p 0.05), so both servers do the same
# work; each request has its own seed.
# (LLAMA_SERVER: a llama-server binary you built, e.g. from github.com/ggml-org/llama.cpp.)
set -euo pipefail
model=$1 llama_server=$2 build=${3:-build} max_tokens=${4:-64} sampling=${5:-greedy}
case $sampling in
  greedy) sampling_args=(--greedy) ;;
  sampled) sampling_args=(--fields '{"top_k": 40, "top_p": 0.95, "min_p": 0.05}') ;;
  *) echo "sampling must be greedy or sampled, not '$sampling'" >&2; exit 2 ;;
esac
threads=2 slots=64 ctx=256
load=$build/bench/bench_server_load

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() {  # PORT PID
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/v1/models" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "server exited" >&2; return 1; }
    sleep 0.2
  done
  echo "server did not start" >&2; return 1
}
run_server() {  # NAME COMMAND...
  local name=$1 port pid
  shift
  port=$(free_port)
  "$@" --port "$port" >"/tmp/serve-bench-$name.log" 2>&1 &
  pid=$!
  wait_ready "$port" "$pid"
  "$load" --port "$port" --pid "$pid" --clients 1 --requests 2 --max-tokens 8 --path /v1/completions >/dev/null  # warm-up
  for clients in 1 16 64; do
    local requests=$((clients < 4 ? 8 : 2 * clients))
    printf '{"server":"%s","model":"%s","sampling":"%s",' "$name" "$(basename "$model")" "$sampling"
    "$load" --port "$port" --pid "$pid" --clients "$clients" --requests "$requests" --max-tokens "$max_tokens" \
      --path /v1/completions "${sampling_args[@]}" --ignore-eos | sed 's/^{//'
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_server camelid "$build/camelid" serve -m "$model" --threads "$threads" --parallel "$slots" --ctx "$ctx" --kv-type f16
run_server llama.cpp "$llama_server" -m "$model" -t "$threads" -tb "$threads" -np "$slots" -c $((slots * ctx)) \
  -ctk f16 -ctv f16 --host 127.0.0.1
