#!/usr/bin/python3
"""PyTorch oracle for `camelid dpo` (issue 12): the same Llama (train_oracle.forward), pairs, AdamW
and constant rate, in f32, from the same Hugging Face checkpoint. Each sequence runs alone (no
padding); reference log-probabilities come from the starting weights. Pairs: JSONL with
prompt_ids/chosen_ids/rejected_ids; step s takes pairs (s*P + i) mod n (P = batch x grad-accum).

Prints one JSON line per step ({"step", "loss", "grad_norm", "margin"}) and writes the final weights.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_oracle import forward, read_safetensors, write_safetensors  # noqa: E402


def seq_logprob(P, cfg, prompt, resp):
    seq = torch.tensor([prompt + resp], dtype=torch.long)
    logits = forward(P, cfg, seq[:, :-1])[0]
    logp = F.log_softmax(logits, dim=-1)
    targets = seq[0, 1:]
    idx = torch.arange(len(prompt) - 1, seq.shape[1] - 1)
    return logp[idx, targets[idx]].sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=1.0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    with open(a.model + "/config.json") as f:
        cfg = json.load(f)
    P = read_safetensors(a.model + "/model.safetensors")
    if cfg.get("tie_word_embeddings"):
        P.pop("lm_head.weight", None)
    pairs = []
    with open(a.data) as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                pairs.append((j["prompt_ids"], j["chosen_ids"], j["rejected_ids"]))
    with torch.no_grad():
        ref = [(seq_logprob(P, cfg, p, c).item(), seq_logprob(P, cfg, p, r).item()) for p, c, r in pairs]
    for t in P.values():
        t.requires_grad_(True)
    params = list(P.values())
    decay = [t for t in params if t.dim() == 2]
    no_decay = [t for t in params if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps)
    n = len(pairs)
    per_step = a.batch * a.grad_accum
    for s in range(a.steps):
        opt.zero_grad(set_to_none=False)
        loss_sum, margin = 0.0, 0.0
        for i in range(per_step):
            k = (s * per_step + i) % n
            p, c, r = pairs[k]
            lc, lr_ = seq_logprob(P, cfg, p, c), seq_logprob(P, cfg, p, r)
            z = a.beta * ((lc - ref[k][0]) - (lr_ - ref[k][1]))
            loss = -F.logsigmoid(z) / per_step
            loss.backward()
            loss_sum += loss.item()
            margin += z.item() / per_step
        if a.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, a.clip)
        else:
            norm = torch.norm(torch.stack([torch.norm(p.grad) for p in params]))
        opt.step()
        print(json.dumps({"step": s + 1, "loss": loss_sum, "grad_norm": float(norm), "margin": margin}), flush=True)
    write_safetensors(a.out, dict(P.items()))


if __name__ == "__main__":
    main()
