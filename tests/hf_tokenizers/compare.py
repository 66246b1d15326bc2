"""Compares camelid's ids (tokenize --batch) with tokenizers.js's and, with --decode, tokenizers.js's
decoding with the input text: python3 compare.py NAME TEXTS.json CAMELID.json HF.json [--decode]
(exit 1 on any difference, each printed with the first position where the ids part)."""
import json
import sys

name, texts, cam, hf = sys.argv[1], *(json.load(open(f)) for f in sys.argv[2:5])
check_decode = "--decode" in sys.argv[5:]
bad = 0
for i, text in enumerate(texts):
    a, b = cam[i], hf["ids"][i]
    if a != b:
        k = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        print(f"{name}: text {i} {text[:60]!r}: ids differ at {k}: camelid {a[k:k + 6]} tokenizers.js {b[k:k + 6]}")
        bad += 1
    # Not round trips by design: special-token text (decoded without special tokens), a literal
    # SentencePiece space marker U+2581 (decodes to a space), U+FEFF (tokenizers.js decodes
    # byte-fallback runs with TextDecoder, which drops a byte order mark; Rust's tokenizers keeps it).
    lossy = any(s in text for s in ("<s>", "</s>", "<unk>", "<|", "\u2581", "\ufeff"))
    if check_decode and not lossy and hf["decoded"][i] != text:
        print(f"{name}: text {i} {text[:60]!r} decodes to {hf['decoded'][i][:60]!r}")
        bad += 1
print(f"{name}: {len(texts)} texts, {bad} differences")
sys.exit(1 if bad else 0)
