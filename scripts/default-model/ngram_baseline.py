#!/usr/bin/env python3
"""Held-out perplexity of an interpolated Kneser-Ney n-gram model: the baseline the default
model's perplexity is reported against, on the same token ids (camelid's trained tokenizer).

Usage: ngram_baseline.py TRAIN_IDS VAL_IDS VOCAB_SIZE [--order N] [--discount D]
  *_IDS: little-endian uint32 token ids (what `camelid train --data-format ids` reads).

Interpolated Kneser-Ney (Chen & Goodman 1998, one discount D per order): the highest order uses
counts, lower orders continuation counts (how many distinct words precede), and the unigram
level is interpolated with a uniform distribution over the vocabulary, so every id gets a
probability. Every validation token is predicted from up to N-1 preceding tokens.
"""
import argparse
import array
import math
from collections import defaultdict


def read_ids(path):
    a = array.array("I")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a.tolist()


class KneserNey:
    def __init__(self, ids, order, discount, vocab):
        self.n, self.d, self.vocab = order, discount, vocab
        # counts[k][(context, word)] for k+1-grams; the top order holds raw counts, the lower
        # orders continuation counts.
        self.counts = [defaultdict(int) for _ in range(order)]
        for i in range(order - 1, len(ids)):
            self.counts[order - 1][tuple(ids[i - order + 1:i + 1])] += 1
        # Continuation counts: each distinct k+1-gram adds one to the k-gram it ends with.
        for k in range(order - 1, 0, -1):
            for gram in self.counts[k]:
                self.counts[k - 1][gram[1:]] += 1
        # Per-context totals and number of distinct followers, per order.
        self.ctx_total = [defaultdict(int) for _ in range(order)]
        self.ctx_types = [defaultdict(int) for _ in range(order)]
        for k in range(order):
            for gram, c in self.counts[k].items():
                self.ctx_total[k][gram[:-1]] += c
                self.ctx_types[k][gram[:-1]] += 1

    def prob(self, context, word):
        p = 1.0 / self.vocab
        for k in range(self.n):  # from unigrams up to the full context
            if k > len(context):
                break
            ctx = tuple(context[len(context) - k:]) if k else ()
            total = self.ctx_total[k].get(ctx, 0)
            if total == 0:
                continue
            c = self.counts[k].get(ctx + (word,), 0)
            lam = self.d * self.ctx_types[k][ctx] / total
            p = max(c - self.d, 0) / total + lam * p
        return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("val")
    ap.add_argument("vocab", type=int)
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--discount", type=float, default=0.75)
    ap.add_argument("--windows", type=int, default=0,
                    help="score only the tokens `camelid perplexity -c N` scores: the second half of each whole "
                         "window of N tokens (positions N/2+1 .. N-1)")
    a = ap.parse_args()
    train, val = read_ids(a.train), read_ids(a.val)
    lm = KneserNey(train, a.order, a.discount, a.vocab)
    n = a.windows
    # llama-perplexity scores the tokens after position n/2 of each window: n/2 - 1 per window.
    scored = [i for i in range(len(val)) if not n or (i < len(val) // n * n and i % n > n // 2)]
    nll = 0.0
    for i in scored:
        nll -= math.log(lm.prob(val[max(0, i - a.order + 1):i], val[i]))
    ppl = math.exp(nll / len(scored))
    print(f'{{"order": {a.order}, "discount": {a.discount}, "train_tokens": {len(train)}, '
          f'"val_tokens": {len(val)}, "scored_tokens": {len(scored)}, "val_loss": {nll / len(scored):.4f}, '
          f'"val_ppl": {ppl:.2f}}}')


if __name__ == "__main__":
    main()
