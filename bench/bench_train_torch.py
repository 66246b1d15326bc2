#!/usr/bin/env python3
"""PyTorch's training step on the model bench_train times: forward + cross-entropy + backward
(no optimizer), same shapes, batch and thread count, f32. Run with Debian's python3-torch:
    /usr/bin/python3 bench/bench_train_torch.py [--batch 8] [--seq 256] [--threads 2] ...
and compare with `OMP_NUM_THREADS=2 build/bench/bench_train x`. Debian's torch 1.13 calls the
system BLAS (BLAS_INFO=generic): the reference libblas unless an optimized one such as
libopenblas0-pthread is installed (update-alternatives picks it); the BLAS in use is printed.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from train_oracle import forward  # noqa: E402  (the oracle's Llama: one definition for both)


def blas_in_use():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line}
    return ", ".join(sorted(os.path.realpath(l) for l in libs)) or "unknown"


def main():
    ap = argparse.ArgumentParser()
    for name, default in [("batch", 8), ("seq", 256), ("threads", 2), ("dim", 512), ("layers", 6), ("hidden", 1408),
                          ("heads", 8), ("vocab", 8192), ("steps", 3)]:
        ap.add_argument("--" + name, type=int, default=default)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    cfg = {"hidden_size": a.dim, "num_attention_heads": a.heads, "num_key_value_heads": a.heads,
           "num_hidden_layers": a.layers, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
    P = {"model.embed_tokens.weight": torch.randn(a.vocab, a.dim) * 0.02, "model.norm.weight": torch.ones(a.dim)}
    for l in range(a.layers):
        p = f"model.layers.{l}."
        P[p + "input_layernorm.weight"] = torch.ones(a.dim)
        P[p + "post_attention_layernorm.weight"] = torch.ones(a.dim)
        for n, shape in [("self_attn.q_proj", (a.dim, a.dim)), ("self_attn.k_proj", (a.dim, a.dim)),
                         ("self_attn.v_proj", (a.dim, a.dim)), ("self_attn.o_proj", (a.dim, a.dim)),
                         ("mlp.gate_proj", (a.hidden, a.dim)), ("mlp.up_proj", (a.hidden, a.dim)),
                         ("mlp.down_proj", (a.dim, a.hidden))]:
            P[p + n + ".weight"] = torch.randn(*shape) * 0.02
    for t in P.values():
        t.requires_grad_(True)
    params = sum(t.numel() for t in P.values())
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq))
    targets = torch.randint(0, a.vocab, (a.batch, a.seq))
    best = float("inf")
    for s in range(a.steps + 1):  # step 0 warms up
        t0 = time.perf_counter()
        loss = F.cross_entropy(forward(P, cfg, tokens).view(-1, a.vocab), targets.view(-1))
        loss.backward()
        dt = time.perf_counter() - t0
        if s:
            best = min(best, dt)
    tps = a.batch * a.seq / best
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS {blas_in_use()}")
    print(f"model: {params / 1e6:.1f}M parameters; batch {a.batch} x {a.seq}")
    print(f"step {best:.3f} s: {tps:.0f} tokens/s, {6 * params * tps / 1e9:.1f} GFLOP/s (6*params*tokens/s)")


if __name__ == "__main__":
    main()
