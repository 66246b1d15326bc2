#!/usr/bin/env python3
"""Documents of a text file (separated by blank lines) as one uint32 token stream, BOS before each
document, tokenized by camelid itself (`camelid tokenize --batch`), for `camelid train --data`.

Usage: tokenize_docs.py CAMELID TOKENIZER_DIR TEXT_FILE OUT_IDS
"""
import array
import json
import os
import subprocess
import sys
import tempfile


def main():
    camelid, tok, text_file, out = sys.argv[1:5]
    with open(text_file, encoding="utf-8") as f:
        docs = [d.strip() for d in f.read().split("\n\n") if d.strip()]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(docs, f)
        batch = f.name
    try:
        ids = json.loads(subprocess.run([camelid, "tokenize", "-m", tok, "--batch", batch],
                                        check=True, capture_output=True, text=True).stdout)
    finally:
        os.unlink(batch)
    stream = array.array("I", [i for doc in ids for i in doc])  # BOS is the tokenizer's own
    with open(out, "wb") as f:
        f.write(stream.tobytes())
    print(f"{text_file}: {len(docs)} documents, {len(stream)} tokens -> {out}")


if __name__ == "__main__":
    main()
