#!/usr/bin/env bash
# Prefill / decode tokens/s of camelid and llama.cpp on the same GGUF files, interleaved type by
# type and round by round (a VM's speed drifts within minutes, so only figures taken in the same
# minutes compare): `llama-bench -t T -p 128 -n 64 -r 1` against `camelid bench -p 128 -n 64 -t T`.
# Makes the bench-450m files first if DIR lacks them (gen-random, the Llama 2 tokenizer from the
# fixtures, then this build's convert / quantize). Prints one line per round and a median line per
# type with the ratios.
#   bench/bench_vs_llamacpp.sh LLAMA_BENCH [DIR] [ROUNDS] [TYPES]
# (LLAMA_BENCH: a llama-bench binary you built, e.g. from github.com/ggml-org/llama.cpp;
#  CAMELID: the camelid binary, default build/camelid; THREADS: default 2.)
set -euo pipefail
llama_bench=$1 dir=${2:-/tmp/camelid-bench-450m} rounds=${3:-3} types=${4:-"f32 f16 bf16 Q8_0 Q4_0 Q4_K_M"}
camelid=${CAMELID:-build/camelid} threads=${THREADS:-2}
fixtures=${CAMELID_FIXTURES:-../shared/fixtures}

mkdir -p "$dir"
if [ ! -f "$dir/hf/config.json" ]; then
  "$camelid" gen-random -o "$dir/hf" --preset bench-450m >/dev/null
  cp "$fixtures"/tokenizers/llama2/* "$dir/hf/"  # llama.cpp refuses a GGUF without a tokenizer
fi
for t in $types; do
  f=$dir/b450-$t.gguf
  [ -f "$f" ] && continue
  case $t in
    f32|f16|bf16) "$camelid" convert "$dir/hf" "$f" --type "$t" >/dev/null ;;
    *) "$camelid" quantize "$dir/hf" "$f" "$t" >/dev/null ;;
  esac
done

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for t in $types; do
  f=$dir/b450-$t.gguf
  : > "$dir/$t.rounds"
  for r in $(seq "$rounds"); do
    # llama-bench's CSV: one row per test (pp128, then tg64); avg_ts is the next-to-last column.
    l=$("$llama_bench" -m "$f" -t "$threads" -p 128 -n 64 -r 1 -o csv 2>/dev/null | awk -F, 'NR > 1 {gsub(/"/, ""); print $(NF - 1)}' | awk '{printf "%s%.1f", (NR > 1 ? " " : ""), $1}')
    c=$("$camelid" bench -m "$f" -p 128 -n 64 -t "$threads" --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print("%.1f %.1f" % (d["prefill_tok_s"], d["decode_tok_s"]))')
    echo "$l $c" >> "$dir/$t.rounds"
    echo "$t round $r: llama.cpp pp128 / tg64 ${l/ / / }   camelid ${c/ / / }"
  done
  lp=$(cut -d' ' -f1 "$dir/$t.rounds" | median) lt=$(cut -d' ' -f2 "$dir/$t.rounds" | median)
  cp=$(cut -d' ' -f3 "$dir/$t.rounds" | median) ct=$(cut -d' ' -f4 "$dir/$t.rounds" | median)
  awk -v t="$t" -v lp="$lp" -v lt="$lt" -v cp="$cp" -v ct="$ct" 'BEGIN {
    printf "%s median: llama.cpp %.1f / %.1f   camelid %.1f / %.1f   ratio %.2fx / %.2fx\n", t, lp, lt, cp, ct, cp / lp, ct / lt }'
done
