"""Would torch.compile speed up a decode step? A static-shape step (1,024-slot cache with a
mask, the position as a tensor) compiled with inductor vs the same step in eager mode, batch 4,
2 threads, shipped model.

Measured 2026-11-22 on the 2-core Xeon while another process was running: eager (full masked
cache) 4.80 ms/step, compiled 2.07 ms/step after a 25.7 s first call; musegen's own eager step
with its growing cache measured 2.77 ms/step alongside. Not adopted: ~25 % per step does not
pay for a 26 s compile in a one-shot CLI run. The sampler has since moved to the lean eager
step of `musegen.generate.decode` (shared prompt cache, folded norms, one-function step), which
this script times too ("lean", same batch, a 256-token prompt, 300 steps).

    python -m benchmarks.compile_decode [--threads N] [--no-compile]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from musegen.generate.decode import Decoder, DecodeWeights
from musegen.model import apply_rotary, rotary
from musegen.studio import Studio

B, L = 4, 1024


def make_step(m):
    cfg = m.cfg
    heads, hd = cfg.n_heads, cfg.head_dim
    cos_t, sin_t = rotary(cfg, torch.arange(L))
    kc = [torch.zeros(B, heads, L, hd) for _ in range(cfg.n_layers)]
    vc = [torch.zeros(B, heads, L, hd) for _ in range(cfg.n_layers)]
    emb = m.model.embed_tokens.weight
    qkv_w = [torch.cat([b.self_attn.q_proj.weight, b.self_attn.k_proj.weight, b.self_attn.v_proj.weight])
             for b in m.model.layers]  # [q; k; v] and [gate; up]: one matmul each
    gu_w = [torch.cat([b.mlp.gate_proj.weight, b.mlp.up_proj.weight]) for b in m.model.layers]

    def norm(x, w):
        return F.rms_norm(x, (cfg.d_model,), w, cfg.norm_eps)

    def step(ids, style, pos):
        x = F.embedding(ids, emb) + style[:, None, :]
        cos = cos_t[pos][None, :, None, None, :]
        sin = sin_t[pos][None, :, None, None, :]
        mask = (torch.arange(L) <= pos)[None, None, None, :]
        for i, blk in enumerate(m.model.layers):
            a, mlp = blk.self_attn, blk.mlp
            qkv = F.linear(norm(x, blk.input_layernorm.weight), qkv_w[i]).view(B, 1, 3, heads, hd)
            qk = apply_rotary(qkv[:, :, :2], cos, sin)
            kc[i].index_copy_(2, pos, qk[:, :, 1].transpose(1, 2))
            vc[i].index_copy_(2, pos, qkv[:, :, 2].transpose(1, 2))
            y = F.scaled_dot_product_attention(qk[:, :, 0].transpose(1, 2), kc[i], vc[i], attn_mask=mask)
            x = x + a.o_proj(y.transpose(1, 2).reshape(B, 1, -1))
            gate, up = F.linear(norm(x, blk.post_attention_layernorm.weight), gu_w[i]).chunk(2, -1)
            x = x + mlp.down_proj(F.silu(gate) * up)
        return F.linear(norm(x, m.model.norm.weight), emb)

    return step


def time_lean(m, steps: int = 300) -> float:
    """ms per step of the sampler's own decode path after a 256-token shared prompt."""
    style = m.styles.weight[1:2].detach()
    dec = Decoder(DecodeWeights.of(m), capacity=steps + 1)
    dec.start(torch.randint(3, 400, (1, 256)), style, torch.zeros(B, dtype=torch.long))
    ids = torch.randint(3, 400, (B,))
    for _ in range(10):
        dec.step(ids)
    dec.S = 0
    t0 = time.perf_counter()
    for _ in range(steps - 10):
        dec.step(ids)
    return (time.perf_counter() - t0) / (steps - 10) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = Studio(threads=args.threads).model
    ids = torch.randint(3, 400, (B, 1))
    style = m.styles.weight[1:5].detach()
    with torch.no_grad():
        print(f"lean (musegen.generate.decode): {time_lean(m):.2f} ms/step")
        steps = [("eager", make_step(m))]
        if not args.no_compile:
            steps.append(("compiled", torch.compile(make_step(m), dynamic=False)))
        for name, fn in steps:
            t0 = time.perf_counter()
            fn(ids, style, torch.tensor([5]))
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            for p in range(300):
                fn(ids, style, torch.tensor([p]))
            print(f"{name}: first call {first:.1f} s, {(time.perf_counter() - t0) / 300 * 1000:.2f} ms/step")


if __name__ == "__main__":
    main()
