#!/usr/bin/env bash
# ctest entry: Hugging Face's tokenizers.js loads what `camelid train-tokenizer` writes (both
# types) and the fixtures' Llama 2/3 tokenizers, and gives camelid's ids on every string of the
# fixture corpus plus the lines of the README (special-token text parsed, as HF does by default),
# and decodes the trained ones back to the text. (The fixture tokenizers' decoding is checked
# against Python's transformers by the conformance tests.)
# Exit 77 (skipped) when node or the npm package is unavailable, except under CI=true (fails).
#   run.sh CAMELID FIXTURES README
set -u
bin=$1 fixtures=${CAMELID_FIXTURES:-$2} readme=$3
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "$1"; [ "${CI:-}" = true ] && exit 1; exit 77; }
command -v node >/dev/null || skip "node not found"
if [ ! -d "$here/node_modules/@huggingface/tokenizers" ]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || skip "npm install failed"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
set -e
python3 - "$fixtures/tokenizers/corpus.json" "$readme" "$work" <<'PY'
import json, sys
corpus, readme, work = json.load(open(sys.argv[1])), open(sys.argv[2]).read(), sys.argv[3]
open(f"{work}/train.txt", "w").write(readme + "\n".join(corpus))
json.dump(corpus + readme.split("\n"), open(f"{work}/texts.json", "w"))
PY
status=0
check() {  # NAME TOKENIZER_DIR [--decode]
  "$bin" tokenize -m "$2" --parse-special --batch "$work/texts.json" > "$work/$1.camelid.json"
  node "$here/encode.mjs" "$2" "$work/texts.json" > "$work/$1.hf.json"
  python3 "$here/compare.py" "$1" "$work/texts.json" "$work/$1.camelid.json" "$work/$1.hf.json" "${@:3}" || status=1
}
for type in sentencepiece-bpe bpe-bytelevel; do
  "$bin" train-tokenizer -o "$work/$type" --vocab-size 700 --type "$type" "$work/train.txt" > /dev/null
  check "trained $type" "$work/$type" --decode
done
check "fixture llama2" "$fixtures/tokenizers/llama2"
check "fixture llama3" "$fixtures/tokenizers/llama3"
exit $status
