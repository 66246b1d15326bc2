#!/usr/bin/python3
"""PyTorch oracle for `camelid dpo` (issue 12): the same Llama (train_oracle.forward), pairs, AdamW
and constant rate, in f32, from the same Hugging Face checkpoint. Each sequence runs alone (no
padding); reference log-probabilities come from the starting weights. Pairs: JSONL with
prompt_ids/chosen_ids/rejected_ids; step s takes pairs (s*P + i) mod n (P = batch x grad-accum).

LoRA mode (--lora-init ADAPTER, as `camelid dpo --lora-init`): only the adapter trains (PEFT's
semantics, no dropout, weight decay on all of it) over the frozen model, and the reference is the
model without the adapter.

Prints one JSON line per step ({"step", "loss", "grad_norm", "margin"}) and writes the final
weights (the adapter's in LoRA mode).
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_oracle import (add_adamw_args, adamw, adamw_lora, clip_grads, forward, load_lora,  # noqa: E402
                          load_model, write_safetensors)


def seq_logprob(P, cfg, prompt, resp, lora=None):
    seq = torch.tensor([prompt + resp], dtype=torch.long)
    logits = forward(P, cfg, seq[:, :-1], lora)[0]
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
    ap.add_argument("--lora-init", help="PEFT adapter directory: train it over the frozen model")
    add_adamw_args(ap, beta2=0.999, weight_decay=0.0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    cfg, P = load_model(a.model)
    pairs = []
    with open(a.data) as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                pairs.append((j["prompt_ids"], j["chosen_ids"], j["rejected_ids"]))
    with torch.no_grad():  # the reference: the model without an adapter
        ref = [(seq_logprob(P, cfg, p, c).item(), seq_logprob(P, cfg, p, r).item()) for p, c, r in pairs]
    lora = None
    if a.lora_init:
        lora, W = load_lora(a.lora_init)
        params, opt = adamw_lora(W, a)
    else:
        params, opt = adamw(P, a)
    n = len(pairs)
    per_step = a.batch * a.grad_accum
    for s in range(a.steps):
        opt.zero_grad(set_to_none=False)
        loss_sum, margin = 0.0, 0.0
        for i in range(per_step):
            k = (s * per_step + i) % n
            p, c, r = pairs[k]
            lc, lr_ = seq_logprob(P, cfg, p, c, lora), seq_logprob(P, cfg, p, r, lora)
            z = a.beta * ((lc - ref[k][0]) - (lr_ - ref[k][1]))
            loss = -F.logsigmoid(z) / per_step
            loss.backward()
            loss_sum += loss.item()
            margin += z.item() / per_step
        norm = clip_grads(params, a.clip)
        opt.step()
        print(json.dumps({"step": s + 1, "loss": loss_sum, "grad_norm": float(norm), "margin": margin}), flush=True)
    write_safetensors(a.out, W if lora else dict(P.items()))


if __name__ == "__main__":
    main()
