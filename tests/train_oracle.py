#!/usr/bin/python3
"""PyTorch oracle for `camelid train` (issue 12): the same Llama, data windows, AdamW, schedule,
clipping and accumulation in plain torch (f32), from the same Hugging Face checkpoint.

LoRA mode (`camelid finetune --lora-init ADAPTER`, --lora-init here): the base is frozen and only
the adapter's lora_A / lora_B train, with PEFT's semantics (y = W x + (alpha / r) B A x, no
dropout), all of them under weight decay; the data are pre-tokenized SFT examples (--sft-data
JSONL: input_ids, labels with -100 ignored), one per row padded to --seq-len, step s row b =
example (s*B + b) mod n, loss = mean over the step's labelled targets. The final adapter is
written under PEFT's names.

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


def forward(P, cfg, tokens, lora=None):
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

        def lin(module, h):
            y = h @ P[p + module + ".weight"].T
            if lora is not None and (p + module) in lora["A"]:
                a, b = lora["A"][p + module], lora["B"][p + module]
                y = y + lora["scale"] * ((h @ a.T) @ b.T)
            return y

        h = rms_norm(x, P[p + "input_layernorm.weight"], eps)
        q = lin("self_attn.q_proj", h).view(B, T, H, hd).transpose(1, 2)
        k = lin("self_attn.k_proj", h).view(B, T, KV, hd).transpose(1, 2)
        v = lin("self_attn.v_proj", h).view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + lin("self_attn.o_proj", o)
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = F.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h)
        x = x + lin("mlp.down_proj", g)
    x = rms_norm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if "lm_head.weight" not in P else P["lm_head.weight"]
    return x @ head.T


def load_model(path):
    """The config and f32 parameters of a Hugging Face directory (a tied head dropped)."""
    with open(path + "/config.json") as f:
        cfg = json.load(f)
    P = read_safetensors(path + "/model.safetensors")
    if cfg.get("tie_word_embeddings"):
        P.pop("lm_head.weight", None)
    return cfg, P


def load_lora(path):
    """A PEFT adapter directory as forward()'s `lora` (alpha / r scaling) and its trainable tensors
    {PEFT name: tensor}."""
    with open(path + "/adapter_config.json") as f:
        acfg = json.load(f)
    if acfg.get("use_rslora"):
        sys.exit("the oracle runs alpha / r scaling only")
    W = read_safetensors(path + "/adapter_model.safetensors")
    prefix = "base_model.model."
    lora = {"A": {}, "B": {}, "scale": acfg["lora_alpha"] / acfg["r"]}
    for name, t in W.items():
        module, kind = name[len(prefix):].rsplit(".", 2)[0], name.rsplit(".", 2)[1]
        t.requires_grad_(True)
        lora["A" if kind == "lora_A" else "B"][module] = t
    return lora, W


def add_adamw_args(ap, beta2, weight_decay):
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=beta2)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=weight_decay)
    ap.add_argument("--clip", type=float, default=1.0)


def adamw(P, a):
    """Every parameter of P trainable; AdamW with weight decay on matrices (embeddings and the head
    included), never on norms. Returns (params, optimizer)."""
    for t in P.values():
        t.requires_grad_(True)
    params = list(P.values())
    decay = [t for t in params if t.dim() == 2]
    no_decay = [t for t in params if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps)
    return params, opt


def adamw_lora(W, a):
    """AdamW over an adapter's tensors, all under weight decay. Returns (params, optimizer)."""
    params = list(W.values())
    return params, torch.optim.AdamW(params, lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps, weight_decay=a.weight_decay)


def clip_grads(params, clip):
    """Clips to the global norm `clip` (0: none); the norm before clipping."""
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    return torch.norm(torch.stack([torch.norm(p.grad) for p in params]))


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
    ap.add_argument("--data", help="token ids (JSON array); not with --lora-init")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--min-lr", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--lr-schedule", dest="schedule", default="cosine")
    add_adamw_args(ap, beta2=0.95, weight_decay=0.1)
    ap.add_argument("--lora-init", help="PEFT adapter directory: train it over the frozen model")
    ap.add_argument("--sft-data", help="pre-tokenized SFT JSONL (input_ids, labels)")
    a = ap.parse_args()
    if a.lora_init:
        return main_lora(a)
    torch.set_num_threads(2)
    torch.manual_seed(0)

    cfg, P = load_model(a.model)
    params, opt = adamw(P, a)

    with open(a.data) as f:
        stream = torch.tensor(json.load(f), dtype=torch.long)
    T = a.seq_len
    n = (len(stream) - 1) // T
    rows = a.batch * a.grad_accum
    total = rows * T
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
        norm = clip_grads(params, a.clip)
        lr = lr_at(a, s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        print(json.dumps({"step": s + 1, "loss": loss_sum / total, "grad_norm": float(norm), "lr": lr}), flush=True)
    write_safetensors(a.out, {k: v for k, v in P.items()})


def main_lora(a):
    torch.set_num_threads(2)
    cfg, P = load_model(a.model)
    lora, W = load_lora(a.lora_init)
    params, opt = adamw_lora(W, a)

    examples = []
    with open(a.sft_data) as f:
        for line in f:
            if line.strip():
                e = json.loads(line)
                ids = e["input_ids"]
                labels = e.get("labels", ids)
                examples.append((ids, [-100] + labels[1:]))
    T = a.seq_len
    n = len(examples)
    rows = a.batch * a.grad_accum

    def row(i):
        ids, labels = examples[i % n]
        ids, labels = ids[:T + 1], labels[:T + 1]
        x = ids[:T] + [0] * (T - min(T, len(ids)))
        y = labels[1:] + [-100] * (T - (len(labels) - 1))
        return x, y

    for s in range(a.steps):
        opt.zero_grad(set_to_none=False)
        batch = [row(s * rows + r) for r in range(rows)]
        total = sum(1 for _, y in batch for t in y if t != -100)
        loss_sum = 0.0
        for m in range(a.grad_accum):
            part = batch[m * a.batch:(m + 1) * a.batch]
            x = torch.tensor([p[0] for p in part], dtype=torch.long)
            y = torch.tensor([p[1] for p in part], dtype=torch.long)
            logits = forward(P, cfg, x, lora)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum",
                                   ignore_index=-100)
            loss_sum += loss.item()
            (loss / total).backward()
        norm = clip_grads(params, a.clip)
        lr = lr_at(a, s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        print(json.dumps({"step": s + 1, "loss": loss_sum / total, "grad_norm": float(norm), "lr": lr}), flush=True)
    write_safetensors(a.out, W)


if __name__ == "__main__":
    main()
