#!/usr/bin/python3
"""PyTorch oracle for `camelid train` (issue 12): the same Llama, data windows, AdamW, schedule,
clipping and accumulation in plain torch (f32), from the same Hugging Face checkpoint.

Prints one JSON line per optimizer step ({"step", "loss", "grad_norm", "lr"}) and writes the final
weights as an f32 safetensors file. Run with Debian's python3-torch (/usr/bin/python3).
"""
import argparse
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {e['dtype']}, the oracle reads f32 only")
        a, b = e["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(e["shape"])
        out[name] = torch.tensor(arr.copy())
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def inv_freq(cfg, head_dim):
    # As ModelConfig::rope_inv_freq (no scaling): 1 / powf(theta, float(2i) / head_dim), kept in f32.
    theta = np.float32(cfg.get("rope_theta", 10000.0))
    f = [1.0 / float(np.power(theta, np.float32(2 * i) / np.float32(head_dim))) for i in range(head_dim // 2)]
    return torch.tensor(np.array(f, dtype=np.float32))


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(P, cfg, tokens):
    B, T = tokens.shape
    D, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or D // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq(cfg, hd))
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = P["model.embed_tokens.weight"][tokens]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, P[p + "input_layernorm.weight"], eps)
        q = (h @ P[p + "self_attn.q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ P[p + "self_attn.k_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
        v = (h @ P[p + "self_attn.v_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + o @ P[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = F.silu(h @ P[p + "mlp.gate_proj.weight"].T) * (h @ P[p + "mlp.up_proj.weight"].T)
        x = x + g @ P[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if "lm_head.weight" not in P else P["lm_head.weight"]
    return x @ head.T


def lr_at(a, s):
    # As train::LrSchedule::at.
    if s < a.warmup:
        return a.lr * (s + 1) / a.warmup
    if a.schedule == "constant":
        return a.lr
    span = max(1, a.steps - a.warmup - 1)
    progress = min(1.0, (s - a.warmup) / span)
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1.0 + math.cos(math.pi * progress))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--min-lr", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--lr-schedule", dest="schedule", default="cosine")
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)

    with open(a.model + "/config.json") as f:
        cfg = json.load(f)
    P = read_safetensors(a.model + "/model.safetensors")
    if cfg.get("tie_word_embeddings"):
        P.pop("lm_head.weight", None)
    for t in P.values():
        t.requires_grad_(True)
    # Weight decay on matrices (embeddings and the head included), never on norms.
    decay = [t for t in P.values() if t.dim() == 2]
    no_decay = [t for t in P.values() if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps)

    with open(a.data) as f:
        stream = torch.tensor(json.load(f), dtype=torch.long)
    T = a.seq_len
    n = (len(stream) - 1) // T
    rows = a.batch * a.grad_accum
    total = rows * T
    params = list(P.values())
    for s in range(a.steps):
        opt.zero_grad(set_to_none=False)
        loss_sum = 0.0
        for m in range(a.grad_accum):
            idx = [(s * rows + m * a.batch + r) % n for r in range(a.batch)]
            win = torch.stack([stream[i * T:i * T + T + 1] for i in idx])
            logits = forward(P, cfg, win[:, :T])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), win[:, 1:].reshape(-1), reduction="sum")
            loss_sum += loss.item()
            (loss / total).backward()
        if a.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, a.clip)
        else:
            norm = torch.norm(torch.stack([torch.norm(p.grad) for p in params]))
        lr = lr_at(a, s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        print(json.dumps({"step": s + 1, "loss": loss_sum / total, "grad_norm": float(norm), "lr": lr}), flush=True)
    write_safetensors(a.out, {k: v for k, v in P.items()})


if __name__ == "__main__":
    main()
