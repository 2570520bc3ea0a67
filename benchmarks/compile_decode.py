"""Would torch.compile speed up a decode step? A static-shape step (1,024-slot cache with a
mask, the position as a tensor) compiled with inductor vs the same step in eager mode, batch 4,
2 threads, shipped model.

Measured 2026-11-22 on the 2-core Xeon while another process was running: eager (full masked
cache) 4.80 ms/step, compiled 2.07 ms/step after a 25.7 s first call; musegen's own eager step
with its growing cache measured 2.77 ms/step alongside. Not adopted: ~25 % per step does not
pay for a 26 s compile in a one-shot CLI run.

    python -m benchmarks.compile_decode
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

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

    def norm(x, w):
        return F.rms_norm(x, (cfg.d_model,), w, cfg.norm_eps)

    def step(ids, style, pos):
        x = F.embedding(ids, emb) + style[:, None, :]
        cos = cos_t[pos][None, :, None, None, :]
        sin = sin_t[pos][None, :, None, None, :]
        mask = (torch.arange(L) <= pos)[None, None, None, :]
        for i, blk in enumerate(m.model.layers):
            a, mlp = blk.self_attn, blk.mlp
            qkv = F.linear(norm(x, blk.input_layernorm.weight), a.fused).view(B, 1, 3, heads, hd)
            qk = apply_rotary(qkv[:, :, :2], cos, sin)
            kc[i].index_copy_(2, pos, qk[:, :, 1].transpose(1, 2))
            vc[i].index_copy_(2, pos, qkv[:, :, 2].transpose(1, 2))
            y = F.scaled_dot_product_attention(qk[:, :, 0].transpose(1, 2), kc[i], vc[i], attn_mask=mask)
            x = x + a.o_proj(y.transpose(1, 2).reshape(B, 1, -1))
            gate, up = F.linear(norm(x, blk.post_attention_layernorm.weight), mlp.fused).chunk(2, -1)
            x = x + mlp.down_proj(F.silu(gate) * up)
        return F.linear(norm(x, m.model.norm.weight), emb)

    return step


def main() -> None:
    torch.set_num_threads(2)
    m = Studio().model
    ids = torch.randint(3, 400, (B, 1))
    style = m.styles.weight[1:5].detach()
    with torch.no_grad():
        for name, fn in [("eager", make_step(m)), ("compiled", torch.compile(make_step(m), dynamic=False))]:
            t0 = time.perf_counter()
            fn(ids, style, torch.tensor([5]))
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            for p in range(300):
                fn(ids, style, torch.tensor([p]))
            print(f"{name}: first call {first:.1f} s, {(time.perf_counter() - t0) / 300 * 1000:.2f} ms/step")


if __name__ == "__main__":
    main()
