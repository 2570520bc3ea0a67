"""A lean decode step for the sampler: the same model, fewer and cheaper operations per token.

`MusegenLM.forward` is the reference (training, scoring, the HF-equality test); this module
reads the same weights, rearranged once per model by `DecodeWeights`, and runs one request's
decoding with them:

* RMSNorm gains (and its 1/sqrt(d)) are folded into the matrices that follow each norm, so a
  norm is four small operations, and q/k/v and gate/up are one matmul each;
* q and k come out of the projection with each head's two rotary halves interleaved, so the
  rotary embedding is one complex multiply (attention only sees q.k, which the same
  permutation of q and k leaves unchanged);
* the prompt is cached once per distinct style row and shared by every variation: a step
  attends to the shared prompt with all rows' queries in one call and to each row's own
  generated tokens in a second, and merges the two with their log-sum-exps. Variations
  therefore read the prompt's keys and values once per step instead of once per row;
* the matrices are stored transposed, (in, out): MKL's small-batch matmul reads that layout
  ~20 % faster than `F.linear`'s (out, in) on the 2-core Xeon;
* rows that are done can be dropped from the batch (`keep`).

A step works on a (rows,) tensor of token ids and returns (rows, vocab) float32 logits.
`Stream` runs a whole request with it: guidance rows, the context window and its slide.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from musegen.model import MusegenLM, guided_logits

_flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


class DecodeWeights:
    """The model's weights rearranged for decoding (built once per model, see `of`)."""

    def __init__(self, model: MusegenLM) -> None:
        cfg = model.cfg
        self.cfg = cfg
        self.nh, self.hd, self.d = cfg.n_heads, cfg.head_dim, cfg.d_model
        d, hd, half = cfg.d_model, cfg.head_dim, cfg.head_dim // 2
        self.eps = d * cfg.norm_eps  # norm(x) = x * rsqrt(sum(x^2) + d*eps) * sqrt(d) * gain
        self.eps_t = torch.tensor(self.eps)  # adding a 0-dim tensor skips wrapping a scalar
        # per head: (0, half, 1, half + 1, ...): rotary pairs side by side, for view_as_complex
        inter = torch.stack([torch.arange(half), torch.arange(half) + half], 1).reshape(-1)
        perm = torch.cat([h * hd + inter for h in range(cfg.n_heads)])

        def t(w: torch.Tensor) -> torch.Tensor:  # (out, in) -> (in, out), contiguous
            return w.detach().t().contiguous()

        with torch.no_grad():
            bb = model.model
            self.emb = bb.embed_tokens.weight.detach()
            self.layers = []
            for blk in bb.layers:
                a, m = blk.self_attn, blk.mlp
                g1 = blk.input_layernorm.weight[None, :] * d ** 0.5
                g2 = blk.post_attention_layernorm.weight[None, :] * d ** 0.5
                q, k, v = a.q_proj.weight, a.k_proj.weight, a.v_proj.weight
                self.layers.append((t(torch.cat([q[perm], k[perm], v]) * g1), t(a.o_proj.weight),
                                    t(torch.cat([m.gate_proj.weight, m.up_proj.weight]) * g2),
                                    t(m.down_proj.weight)))
            # down_proj also as stored, (out, in): with 2+ threads and 2+ rows MKL splits that
            # layout's (rows, 768) x (768, 256) product ~2x faster than the transposed one
            self.down_out_in = [m.down_proj.weight.detach().contiguous()
                                for m in (blk.mlp for blk in bb.layers)]
            self.head = t(self.emb * bb.norm.weight[None, :] * d ** 0.5)
        inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        self._inv = inv.to(self.emb.device)
        self._cis = torch.empty(0, half, dtype=torch.complex64, device=self.emb.device)

    def cis(self, start: int, n: int) -> torch.Tensor:
        """(n, head_dim/2) complex rotations for positions start..start+n-1."""
        if self._cis.shape[0] < start + n:
            size = max(start + n, 2 * self.cfg.context)
            ang = torch.arange(size, dtype=torch.float32, device=self._inv.device)[:, None] * self._inv
            self._cis = torch.polar(torch.ones_like(ang), ang)
        return self._cis[start:start + n]

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        """RMSNorm without its gain and sqrt(d) (both folded into the next matrix)."""
        return x * (x * x).sum(-1, keepdim=True).add_(self.eps).rsqrt_()

    @classmethod
    def of(cls, model: MusegenLM) -> DecodeWeights:
        """Built once per model and kept here (`_BUILT`, which forgets a model when it goes);
        rebuilt if its parameters were replaced, moved or changed in place."""
        key = tuple((id(p), p.data_ptr(), p._version) for p in model.parameters())
        hit = _BUILT.get(model)
        if hit is None or hit[0] != key:
            hit = _BUILT[model] = (key, cls(model))
        return hit[1]


_BUILT: weakref.WeakKeyDictionary[MusegenLM, tuple[tuple, DecodeWeights]] = weakref.WeakKeyDictionary()


def _rope(x: torch.Tensor, cis: torch.Tensor) -> torch.Tensor:
    """x (..., T, nh, hd) with interleaved pairs, cis (T, hd/2) -> rotated copy."""
    shape = x.shape
    xc = torch.view_as_complex(x.reshape(*shape[:-1], -1, 2))
    return torch.view_as_real(xc * cis[:, None, :]).reshape(shape)


class Decoder:
    """One request's decoding state: a shared prompt cache, per-row caches, the active rows.

    `prefix_ids` (U, P) are the prompt windows of U distinct prefixes (one when every row
    starts from the same prompt under the same style) with style vectors `prefix_styles`
    (U, d); row r of the batch starts from prefix `row_prefix[r]` and goes on in its style.
    `capacity` is how many tokens each row may add; past that the caller slides its window
    and starts a new Decoder.
    """

    def __init__(self, w: DecodeWeights, capacity: int) -> None:
        self.w = w
        self.capacity = capacity
        self.prefix: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.suffix: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.P = 0  # prompt length
        self.S = 0  # tokens added after the prompt
        self.group = 1  # rows per prefix row: row r uses prefix row r // group
        self.base = 0  # 0: shared prompt in `prefix`; P: each row's own cache in `suffix`
        self.styles = torch.empty(0)  # (B, d) style vector of each row

    @property
    def length(self) -> int:
        return self.P + self.S

    @torch.no_grad()
    def start(self, prefix_ids: torch.Tensor, prefix_styles: torch.Tensor, row_prefix: torch.Tensor
              ) -> torch.Tensor:
        """Prefill the prompt(s); returns the logits (B, V) of each row's next token. Row r
        goes on under its prefix's style, `prefix_styles[row_prefix[r]]`."""
        w = self.w
        U, P = prefix_ids.shape
        B = row_prefix.shape[0]
        x = F.embedding(prefix_ids, w.emb) + prefix_styles[:, None, :].to(w.emb.dtype)
        cis = w.cis(0, P)
        self.prefix = []
        for wqkv, wo, wgu, wdown in w.layers:
            qkv = (w.norm(x) @ wqkv).view(U, P, 3, w.nh, w.hd)
            q = _rope(qkv[:, :, 0], cis).transpose(1, 2)
            k = _rope(qkv[:, :, 1], cis).transpose(1, 2).contiguous()
            v = qkv[:, :, 2].transpose(1, 2).contiguous()
            self.prefix.append((k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + y.transpose(1, 2).reshape(U, P, w.d) @ wo
            g, u = (w.norm(x) @ wgu).chunk(2, -1)
            x = x + (F.silu(g) * u) @ wdown
        last = w.norm(x[:, -1]) @ w.head  # (U, V)
        self.P, self.S, self.base, self.suffix = P, 0, 0, []
        self.styles = prefix_styles[row_prefix].to(w.emb.dtype)
        # rows in equal consecutive blocks per prefix row: a block's queries share one call
        group = B // U if B % U == 0 else 0
        blocks = row_prefix.view(U, group)[:, 0] if group else None
        if group > 1 and torch.equal(row_prefix, blocks.repeat_interleave(group)):
            if not torch.equal(blocks, torch.arange(U, device=blocks.device)):
                self.prefix = [(k[blocks], v[blocks]) for k, v in self.prefix]
            self.group = group
            self.suffix = [(self._empty(B, self.capacity), self._empty(B, self.capacity))
                           for _ in w.layers]
        else:  # nothing shared: each row's own cache, its prompt first
            self._own_caches(row_prefix, torch.arange(B, device=row_prefix.device))
        return last[row_prefix]

    def _empty(self, rows: int, slots: int) -> torch.Tensor:
        return torch.empty((rows, self.w.nh, slots, self.w.hd), device=self.w.emb.device,
                           dtype=self.w.emb.dtype)

    def _own_caches(self, src: torch.Tensor, rows: torch.Tensor) -> None:
        """Switch to one contiguous cache per row (prompt, then the row's own tokens): one
        attention call per layer, no merge. Row i takes prefix row src[i] and the own tokens
        of current row rows[i]."""
        P, S, n = self.P, self.S, rows.numel()
        caches = []
        for (kp, vp), (ks, vs) in zip(self.prefix, self.suffix or [(None, None)] * len(self.prefix)):
            k, v = self._empty(n, P + self.capacity), self._empty(n, P + self.capacity)
            k[:, :, :P], v[:, :, :P] = kp[src], vp[src]
            if S:
                k[:, :, P:P + S], v[:, :, P:P + S] = ks[rows, :, :S], vs[rows, :, :S]
            caches.append((k, v))
        self.suffix, self.group, self.base = caches, 1, P
        self.prefix = [(k[:, :, :0], v[:, :, :0]) for k, v in caches]  # unused, kept for zip

    @torch.no_grad()
    def keep(self, rows: torch.Tensor) -> None:
        """Go on with only these rows (indices into the current batch, ascending)."""
        B = self.styles.shape[0]
        if rows.numel() == B:
            return
        Up = self.prefix[0][0].shape[0]
        if self.base:  # own caches already
            self.suffix = [(k[rows], v[rows]) for k, v in self.suffix]
        elif Up == 1 and rows.numel() > 1:  # still one prompt for all
            self.suffix = [(k[rows], v[rows]) for k, v in self.suffix]
            self.group = rows.numel()
        else:  # a lone row, or blocks broken up: own caches
            self._own_caches(rows // self.group, rows)
        self.styles = self.styles[rows]

    @torch.no_grad()
    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (B,); returns the next-token logits (B, V).

        Written out in one function: at batch 4 a layer is ~30 tiny kernels, so Python calls
        between them are a visible share of a step."""
        w = self.w
        B = ids.shape[0]
        s = self.S
        if s >= self.capacity:
            raise RuntimeError("decode cache full: start a new Decoder on a shorter window")
        Up, G, nh, hd, eps = self.prefix[0][0].shape[0], self.group, w.nh, w.hd, w.eps_t
        own = self.base > 0  # each row's own cache (prompt included) or a shared prompt
        fast = _flash is not None and ids.device.type == "cpu"
        scale = 1.0 / math.sqrt(hd)
        at, end = self.base + s, self.base + s + 1  # where this token goes; cache length after
        x = F.embedding(ids, w.emb) + self.styles  # (B, d)
        cis = w.cis(self.P + s, 1)
        split = B > 1 and torch.get_num_threads() > 1  # down_proj: which layout is faster
        for (wqkv, wo, wgu, wdown), wdo, (kp, vp), (ks, vs) in zip(w.layers, w.down_out_in,
                                                                  self.prefix, self.suffix):
            h = x * (x * x).sum(-1, keepdim=True).add_(eps).rsqrt_()
            qkv = (h @ wqkv).view(B, 3, nh, hd)
            qk = torch.view_as_complex(qkv[:, :2].reshape(B, 2, nh, hd // 2, 2)) * cis
            qk = torch.view_as_real(qk).view(B, 2, nh, hd)  # rotated q, k
            ks[:, :, at] = qk[:, 1]
            vs[:, :, at] = qkv[:, 2]
            q = qk[:, 0]  # (B, nh, hd)
            if own:
                y = F.scaled_dot_product_attention(q[:, :, None], ks[:, :, :end], vs[:, :, :end],
                                                   scale=scale)[:, :, 0]
            elif fast:  # prompt (a block's queries in one call) and own tokens, merged by lse
                q1 = q[:, :, None]  # (B, nh, 1, hd)
                o1, l1 = _flash(q1.transpose(0, 2) if Up == 1 else
                                q.reshape(Up, G, nh, hd).transpose(1, 2), kp, vp, scale=scale)
                o2, l2 = _flash(q1, ks[:, :, :end], vs[:, :, :end], scale=scale)
                if Up == 1:  # (1, nh, B, .) -> (B, nh, 1, .): views
                    o1, l1 = o1.transpose(0, 2), l1.transpose(0, 2)
                else:
                    o1 = o1.transpose(1, 2).reshape(B, nh, 1, hd)
                    l1 = l1.transpose(1, 2).reshape(B, nh, 1)
                # the prompt's share of each row's softmax mass, from the two log-sum-exps
                y = torch.lerp(o2, o1, torch.sub(l1, l2).sigmoid_()[..., None])
            else:
                y = _attend(q, kp, vp, ks[:, :, :end], vs[:, :, :end], Up, G)
            x = torch.addmm(x, y.reshape(B, w.d), wo)
            h = x * (x * x).sum(-1, keepdim=True).add_(eps).rsqrt_()
            g, u = (h @ wgu).chunk(2, -1)
            x = torch.addmm(x, F.silu(g).mul_(u), wdo.t() if split else wdown)
        self.S = s + 1
        return w.norm(x) @ w.head


def _attend(q: torch.Tensor, kp: torch.Tensor, vp: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor,
            Up: int, G: int) -> torch.Tensor:
    """Without the CPU flash kernel's log-sum-exp (other devices): one query per row (B, nh, hd)
    over its prefix (shared by groups of G rows) and its own tokens, concatenated."""
    k = torch.cat([kp.repeat_interleave(G, 0), ks], 2)
    v = torch.cat([vp.repeat_interleave(G, 0), vs], 2)
    return F.scaled_dot_product_attention(q[:, :, None], k, v)[:, :, 0]


class Stream:
    """The model side of one request: every row's next-token logits, one token at a time.

    All rows start from `prompt` (T,), cut to its last `context // 2` tokens with `head` (the
    header) kept; it is prefilled once per distinct style row. With guidance (`strength` != 1)
    each row also runs under the "no style" vector and `logits` mixes the two. A row's cache
    holds at most `context` tokens, as in training: past that the window slides the same way
    and the caches are rebuilt from it. `budget` is the most tokens a row will add.
    """

    @torch.no_grad()
    def __init__(self, model: MusegenLM, prompt: np.ndarray, head: np.ndarray, styles: torch.Tensor,
                 *, strength: float, budget: int, make_decoder: Callable[[DecodeWeights, int], Decoder] = Decoder
                 ) -> None:
        self.w = DecodeWeights.of(model)
        self.make_decoder = make_decoder  # Decoder (torch), or the fast path's (`fast.decoder_factory`)
        self.dev = next(model.parameters()).device
        self.context, self.keep_tokens, self.budget = model.cfg.context, max(8, model.cfg.context // 2), budget
        self.head, self.strength, self.guided = head, strength, strength != 1.0
        B = styles.shape[0]
        self.styles, self.null = styles, model.styles.null.expand(B, -1)
        first = self._window(prompt[None, :])
        every = torch.cat([styles, self.null]) if self.guided else styles
        uniq, inverse = torch.unique(every, dim=0, return_inverse=True)
        self.dec = self._decoder(first.shape[1])
        self._logits = self.dec.start(torch.from_numpy(first).to(self.dev).expand(uniq.shape[0], -1),
                                      uniq, inverse.to(self.dev))
        self.rows = list(range(B))  # the request's rows still in the batch
        # what each row's cache holds (for re-windowing): the prompt window, then its tokens
        self.held = np.zeros((B, first.shape[1] + budget + 1), dtype=np.int64)
        self.held[:, :first.shape[1]] = first
        self.n_held = first.shape[1]

    def _window(self, rows: np.ndarray) -> np.ndarray:
        """(R, T) -> the last tokens, header first, at most `keep_tokens` long."""
        if rows.shape[1] <= self.keep_tokens:
            return rows
        h = len(self.head)
        tail = rows[:, -(self.keep_tokens - h):]
        return np.concatenate([np.broadcast_to(self.head, (rows.shape[0], h)), tail], 1)

    def _decoder(self, n_prompt: int) -> Decoder:  # a cache of at most `context` tokens
        return self.make_decoder(self.w, min(self.context, n_prompt + self.budget) + 1 - n_prompt)

    def logits(self) -> torch.Tensor:
        """(A, V) float32 on the CPU: the next-token logits of the rows in the batch."""
        lg = self._logits
        if self.guided:
            A = len(self.rows)
            lg = guided_logits(lg[:A], lg[A:], self.strength)
        return lg.float().cpu()

    def feed(self, tokens: list[int], keep: list[int]) -> None:
        """Rows `keep` (positions in the batch, ascending) go on, row keep[i] with tokens[i].
        (No autograd here: the Decoder's own methods run without it.)"""
        A = len(self.rows)
        if len(keep) < A:  # some rows are done: the batch goes on without them
            idx = torch.tensor(keep, device=self.dev)
            self.dec.keep(torch.cat([idx, idx + A]) if self.guided else idx)
            self.rows = [self.rows[i] for i in keep]
        self.held[self.rows, self.n_held] = tokens
        self.n_held += 1
        if self.dec.S + 1 >= self.dec.capacity:  # the window is full: slide it
            self._slide()
        else:
            col = torch.tensor(tokens, dtype=torch.long, device=self.dev)
            self._logits = self.dec.step(torch.cat([col, col]) if self.guided else col)

    def _slide(self) -> None:
        win = self._window(self.held[self.rows, :self.n_held])
        self.held[self.rows, :win.shape[1]] = win
        self.n_held = win.shape[1]
        full = np.concatenate([win, win]) if self.guided else win
        styles = self.styles[self.rows]
        if self.guided:
            styles = torch.cat([styles, self.null[:len(self.rows)]])
        self.dec = self._decoder(win.shape[1])
        self._logits = self.dec.start(torch.from_numpy(full).to(self.dev), styles,
                                      torch.arange(full.shape[0], device=self.dev))
