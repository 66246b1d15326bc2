#!/usr/bin/env bash
# Checks that GGUF files written by camelid's `convert` and `quantize` load in llama.cpp unchanged
# and that both engines compute the same perplexity on them. Optional tool, not run in CI: it needs
# a llama.cpp build (CPU is enough) with llama-perplexity.
#
#   scripts/check-llamacpp.sh LLAMA_CPP_BUILD_DIR [CAMELID_BINARY] [WORK_DIR]
#
# Models: a random Llama with the Llama 2 SentencePiece tokenizer (dim 256, so every K-quant
# applies), written as f32/f16/bf16 and quantized to every type of `camelid quantize`; plus the
# fixture tiny-llama3 (Llama 3 byte-level BPE tokenizer, rope_freqs) as bf16 and Q8_0.
# For each file: llama-perplexity over one 128-token chunk (f32 KV cache, 2 threads), and
# camelid's perplexity over the same tokens and the same positions (llama-perplexity scores only
# the second half of a chunk: camelid's sum over the first n/2+1 tokens is subtracted from its sum
# over all 128). camelid scores its own tokens of the text: plain ASCII, which both tokenizers
# split the same way (a different split would show as a large difference). Exit status 1 if any file fails to load or the
# perplexities differ by more than TOL (default 2%; quantized types round activations
# differently in the two engines, float types should agree to ~1e-4).
set -euo pipefail

LLAMA_BIN=${1:?usage: $0 LLAMA_CPP_BUILD_DIR [CAMELID_BINARY] [WORK_DIR]}
[ -x "$LLAMA_BIN/bin/llama-perplexity" ] && LLAMA_BIN="$LLAMA_BIN/bin"
here=$(cd "$(dirname "$0")/.." && pwd)
CAMELID=${2:-$here/build/camelid}
WORK=${3:-$(mktemp -d /tmp/check-llamacpp.XXXXXX)}
FIX=${CAMELID_FIXTURES:-$here/../shared/fixtures}
TOL=${TOL:-0.02}
NCTX=128
mkdir -p "$WORK"
PPL="$LLAMA_BIN/llama-perplexity"
[ -x "$PPL" ] || { echo "error: no llama-perplexity in $LLAMA_BIN" >&2; exit 1; }
[ -x "$CAMELID" ] || { echo "error: no camelid binary at $CAMELID" >&2; exit 1; }
echo "llama.cpp: $LLAMA_BIN   camelid: $CAMELID   work: $WORK"

# ~400 tokens of plain English prose (llama-perplexity wants at least 2 chunks of text).
TEXT="$WORK/text.txt"
for i in 1 2 3; do cat <<'EOF'
The river ran slowly past the old mill, where the miller kept a small boat tied to a post. Every
morning he checked the ropes, counted the sacks of grain and wrote the numbers in a worn book.
His daughter liked to sit on the wall and watch the water carry leaves and sticks toward the sea.
One day a traveller stopped to ask the way to the market town, and the miller gave him bread,
cheese and directions that were longer than the road itself. The traveller laughed, thanked them
both and walked on along the bank, whistling a tune that nobody in the valley had heard before.
EOF
done > "$TEXT"

# A random model with the Llama 2 tokenizer (vocab 32000).
M="$WORK/rand-spm"
if [ ! -f "$M/config.json" ]; then
  "$CAMELID" gen-random -o "$M" --preset tiny --dim 256 --hidden 768 --layers 2 --heads 4 --kv-heads 2 --vocab 32000 >/dev/null
  cp "$FIX/tokenizers/llama2/tokenizer.model" "$FIX/tokenizers/llama2/tokenizer.json" \
     "$FIX/tokenizers/llama2/tokenizer_config.json" "$M/"
  chmod u+w "$M"/tokenizer*
fi

files=()
for t in f32 f16 bf16; do
  [ -f "$WORK/spm-$t.gguf" ] || "$CAMELID" convert "$M" "$WORK/spm-$t.gguf" --type "$t" >/dev/null 2>&1
  files+=("$WORK/spm-$t.gguf")
done
for q in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS; do
  [ -f "$WORK/spm-$q.gguf" ] || "$CAMELID" quantize "$WORK/spm-f32.gguf" "$WORK/spm-$q.gguf" "$q" >/dev/null 2>&1
  files+=("$WORK/spm-$q.gguf")
done
# Llama 3 tokenizer (gpt2 / llama-bpe) and rope_freqs: the fixture tiny-llama3 (dim 64: no K-quants).
[ -f "$WORK/l3-bf16.gguf" ] || "$CAMELID" convert "$FIX/models/tiny-llama3" "$WORK/l3-bf16.gguf" --type bf16 >/dev/null 2>&1
[ -f "$WORK/l3-Q8_0.gguf" ] || "$CAMELID" quantize "$WORK/l3-bf16.gguf" "$WORK/l3-Q8_0.gguf" Q8_0 >/dev/null 2>&1
files+=("$WORK/l3-bf16.gguf" "$WORK/l3-Q8_0.gguf")

# camelid's perplexity over positions [n/2, n-1) of the first n tokens, as llama-perplexity scores.
camelid_half_ppl() {  # file
  local ids n0 a b
  ids=$("$CAMELID" tokenize -m "$1" < "$TEXT")
  echo "$ids" | tr ',' '\n' | head -n $NCTX | paste -sd, > "$WORK/ids-all.txt"
  echo "$ids" | tr ',' '\n' | head -n $((NCTX / 2 + 1)) | paste -sd, > "$WORK/ids-half.txt"
  a=$("$CAMELID" perplexity -m "$1" --ids-file "$WORK/ids-all.txt" --threads 2 --json)
  b=$("$CAMELID" perplexity -m "$1" --ids-file "$WORK/ids-half.txt" --threads 2 --json)
  python3 - "$a" "$b" <<'EOF'
import json, math, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
s = a["mean_nll"] * a["tokens"] - b["mean_nll"] * b["tokens"]
print("%.6f" % math.exp(s / (a["tokens"] - b["tokens"])))
EOF
}

fail=0
printf '%-16s %-6s %14s %14s %10s\n' file loads ppl_llama.cpp ppl_camelid rel_diff
for f in "${files[@]}"; do
  name=$(basename "$f" .gguf)
  if [ ! -f "$f" ]; then printf '%-16s %s\n' "$name" "NOT WRITTEN by camelid"; fail=1; continue; fi
  log="$WORK/$name.llama.log"
  if ! "$PPL" -m "$f" -f "$TEXT" -c $NCTX -b $NCTX --chunks 1 -t 2 -ctk f32 -ctv f32 >"$log" 2>&1; then
    printf '%-16s %-6s (see %s)\n' "$name" NO "$log"; fail=1; continue
  fi
  pl=$(sed -n 's/.*Final estimate: PPL = \([0-9.e+]*\).*/\1/p' "$log")
  pc=$(camelid_half_ppl "$f")
  rel=$(python3 -c "print('%.2e' % (abs($pl - $pc) / $pl))")
  ok=$(python3 -c "print(int(abs($pl - $pc) / $pl <= $TOL))")
  [ "$ok" = 1 ] || fail=1
  printf '%-16s %-6s %14s %14s %10s%s\n' "$name" yes "$pl" "$pc" "$rel" "$([ "$ok" = 1 ] || echo '  MISMATCH')"
done
exit $fail
