"""The musegen model, in one file: a Llama-shaped decoder plus a learned style table.

Read top to bottom:
1. `MusegenConfig`  - frozen; saved next to the weights, and the only thing loading reads.
2. `StyleTable`     - one learned vector per style plus a learned "no style" vector (row 0);
                      `mix()` turns weights over styles into one vector (weighted sum or slerp),
                      weights outside [0, 1] extrapolate.
3. `MusegenLM`      - the transformer. Its parameters carry the exact names of
                      `transformers.LlamaForCausalLM`, so the language-model part of a saved
                      checkpoint opens with `AutoModelForCausalLM.from_pretrained` (which sees
                      it with a zero style vector). The style vector is added to the token
                      embedding at every position.
4. save/load        - the Hugging Face folder layout plus musegen's own files.

`MusegenLM.forward` is the one reference forward (training, scoring, evaluation), written out
(RMSNorm, rotary embeddings, SwiGLU, SDPA) so it reads top to bottom; a test keeps it equal to
`transformers`' Llama on the same folder. Decoding does not call it per token: every inference
speed-up (KV cache, folded norms, fused projections, a prompt cache shared by variations) lives
in `musegen/generate/decode.py`, whose test keeps its cached logits equal to this forward's.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from musegen.errors import ParameterError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STYLE_FILE = "style_table.safetensors"
STYLES_JSON = "styles.json"
MUSEGEN_JSON = "musegen.json"


# ----------------------------------------------------------------------------- 1. config
@dataclass(frozen=True)
class MusegenConfig:
    vocab_size: int
    n_styles: int
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    d_ff: int = 768
    max_len: int = 4096  # rotary positions: no learned limit; this is only the cache size cap
    context: int = 512  # training window
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    style_names: tuple[str, ...] = field(default=())
    # 24: the model is told the key (a learned vector per tonic x mode, row 0 = unknown, added
    # like the style vector: `key_row`); 0: it is not (models trained before keys were told)
    n_keys: int = 0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def hf_config(self) -> dict:
        """`config.json` as `transformers.LlamaConfig` reads it."""
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.d_model,
            "intermediate_size": self.d_ff,
            "num_hidden_layers": self.n_layers,
            "num_attention_heads": self.n_heads,
            "num_key_value_heads": self.n_heads,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_len,
            "rms_norm_eps": self.norm_eps,
            "rope_theta": self.rope_theta,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            "tie_word_embeddings": True,
            "pad_token_id": self.pad_id,
            "bos_token_id": self.bos_id,
            "eos_token_id": self.eos_id,
            "torch_dtype": "float32",
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["style_names"] = list(self.style_names)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MusegenConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["style_names"] = tuple(known.get("style_names", ()))
        return cls(**known)


# ----------------------------------------------------------------------------- 2. styles
class StyleTable(nn.Module):
    """Row 0 is the learned "no style" vector; row i+1 is style i."""

    def __init__(self, n_styles: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_styles + 1, d_model) * 0.02)

    @property
    def null(self) -> torch.Tensor:
        return self.weight[0]

    def forward(self, style_ids: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, d)
        return self.weight[style_ids]

    def mix(self, weights: dict[int, float], *, slerp: bool = False) -> torch.Tensor:
        """One vector from weights over style indices (0-based, no-style excluded).

        Weighted sum by default: weights need not sum to 1, and values outside [0, 1]
        extrapolate past a style. `slerp=True` (two styles only) walks the great circle
        between them at their norm-interpolated radius.
        """
        rows = self.weight[1:]
        if slerp:
            if len(weights) != 2:
                raise ValueError(f"slerp mixes exactly two styles, got {len(weights)}")
            (a, _), (b, wb) = sorted(weights.items())
            va, vb = rows[a], rows[b]
            ua, ub = va / va.norm(), vb / vb.norm()
            omega = torch.arccos((ua * ub).sum().clamp(-1 + 1e-7, 1 - 1e-7))
            t = float(wb)
            u = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
            return u * ((1 - t) * va.norm() + t * vb.norm())
        out = torch.zeros_like(rows[0])
        for i, w in weights.items():
            out = out + float(w) * rows[i]
        return out


def key_row(key: tuple[int, str] | None) -> int:
    """The key table's row of (tonic pitch class, "major"/"minor"): 1 + tonic (+ 12 in minor);
    0 for no key (unknown, or not told)."""
    if key is None:
        return 0
    tonic, mode = key
    return 1 + int(tonic) % 12 + (12 if mode == "minor" else 0)


# ----------------------------------------------------------------------------- 3. model
class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:  # one fused kernel instead of six small ones
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rotary(cfg: MusegenConfig, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (T, head_dim) in HF Llama's (half-split) layout."""
    hd = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = positions.float()[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg: MusegenConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.hd = cfg.n_heads, cfg.head_dim
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg: MusegenConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: MusegenConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):  # named `model` inside MusegenLM, as in LlamaForCausalLM
    def __init__(self, cfg: MusegenConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)


class MusegenLM(nn.Module):
    def __init__(self, cfg: MusegenConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        self.styles = StyleTable(cfg.n_styles, cfg.d_model)
        # the key table (`key_row`): its row is added to the style vector, like the style
        self.keys = nn.Embedding(cfg.n_keys + 1, cfg.d_model) if cfg.n_keys else None
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    @property
    def lm_head_weight(self) -> torch.Tensor:
        return self.model.embed_tokens.weight  # tied, as `tie_word_embeddings` says

    def forward(self, ids: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for token ids (B, T) under style vectors (B, d), or one vector per
        position (B, T, d) (training: packed windows each with their own key)."""
        B, T = ids.shape
        cos, sin = rotary(self.cfg, torch.arange(T, device=ids.device))  # (T, hs) each
        cond = style[:, None, :] if style.dim() == 2 else style
        x = self.model.embed_tokens(ids) + cond.to(self.model.embed_tokens.weight.dtype)
        for block in self.model.layers:
            x = block(x, cos, sin)  # (B, T, d)
        return F.linear(self.model.norm(x), self.lm_head_weight)  # (B, T, V)

    def fuse(self) -> MusegenLM:
        """Deprecated, does nothing: decoding builds its own fused weights
        (`musegen.generate.decode.DecodeWeights`)."""
        warnings.warn("MusegenLM.fuse() does nothing any more: decoding speed-ups live in "
                      "musegen.generate.decode", DeprecationWarning, stacklevel=2)
        return self

    def style_vectors(self, style_ids: torch.Tensor) -> torch.Tensor:
        return self.styles(style_ids)

    def key_vectors(self, key_rows: torch.Tensor) -> torch.Tensor:
        """The key table's rows (`key_row`), any shape -> (..., d); zeros for a model that is not
        told the key."""
        if self.keys is None:
            return torch.zeros(*key_rows.shape, self.cfg.d_model, device=key_rows.device)
        return self.keys(key_rows)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def add_style(self, name: str) -> int:
        """Append a style row (initialised at the mean style) and return its index."""
        w = self.styles.weight.data
        new = torch.cat([w, w[1:].mean(0, keepdim=True) if len(w) > 1 else w[:1]], 0)
        self.styles.weight = nn.Parameter(new)
        names = (*self.cfg.style_names, name)
        self.cfg = MusegenConfig.from_dict({**self.cfg.to_dict(), "n_styles": len(names),
                                            "style_names": names})
        return len(names) - 1


# ----------------------------------------------------------------------------- 5. save / load
def save_checkpoint(model: MusegenLM, directory: str | Path, *, styles: list[dict],
                    extra: dict | None = None, dtype: torch.dtype = torch.float32) -> Path:
    """Write the HF folder (config.json + model.safetensors) and musegen's files.

    `styles` are the styles.json records (name, description, pieces...); `extra` is stored
    in musegen.json (training arguments, library versions, figures).
    """
    from safetensors.torch import save_file

    from musegen.atomic import atomic_path
    from musegen.atomic import write_bytes as atomic_write_bytes

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    lm = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()
          if not k.startswith(("styles.", "keys."))}
    lm["lm_head.weight"] = lm["model.embed_tokens.weight"]  # explicit for HF loaders
    lm = {k: v.clone() for k, v in lm.items()}  # safetensors refuses shared storage
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(lm, str(tmp), metadata={"format": "pt"})
    with atomic_path(out / STYLE_FILE) as tmp:
        tables = {"style_table": model.styles.weight.detach().float().contiguous()}
        if model.keys is not None:
            tables["key_table"] = model.keys.weight.detach().float().contiguous()
        save_file(tables, str(tmp))
    hf = cfg.hf_config()
    hf["torch_dtype"] = str(dtype).replace("torch.", "")
    atomic_write_bytes(out / CONFIG_FILE, json.dumps(hf, indent=1).encode())
    meta = {"musegen_config": cfg.to_dict(), **(extra or {}), "versions": _versions()}
    atomic_write_bytes(out / MUSEGEN_JSON, json.dumps(meta, indent=1).encode())
    atomic_write_bytes(out / STYLES_JSON, json.dumps(styles, indent=1).encode())
    return out


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[MusegenLM, dict]:
    """Rebuild the model from the folder alone; returns (model in eval mode, musegen.json)."""
    from safetensors.torch import load_file

    d = Path(directory)
    meta = json.loads((d / MUSEGEN_JSON).read_text())
    cfg = MusegenConfig.from_dict(meta["musegen_config"])
    model = MusegenLM(cfg)
    state = load_file(str(d / WEIGHTS_FILE), device=str(device))
    state.pop("lm_head.weight", None)
    tables = load_file(str(d / STYLE_FILE), device=str(device))
    state["styles.weight"] = tables["style_table"]
    if cfg.n_keys:
        state["keys.weight"] = tables["key_table"]
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.to(device).eval(), meta


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"torch": torch.__version__}
    for pkg in ("musegen", "transformers", "safetensors", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def available_devices() -> list[str]:
    """The devices this machine can run on, e.g. ['cuda', 'cuda:0', 'cpu']."""
    out = []
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        out.append("mps")
    return out + ["cpu"]


def pick_device(preference: str | None = None) -> torch.device:
    """cuda -> mps -> cpu, unless `preference` names one; a device this machine does not have
    raises `ParameterError` naming it and the ones it has."""
    if preference and preference != "auto":
        have = available_devices()
        if str(preference) not in have:
            raise ParameterError(f"device {str(preference)!r} is not available on this machine; "
                                 f"available: auto, {', '.join(have)}")
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def guided_logits(cond: torch.Tensor, uncond: torch.Tensor, strength: float) -> torch.Tensor:
    """Classifier-free guidance: strength 0 = no style, 1 = the style as trained, >1 = more."""
    return uncond + strength * (cond - uncond)


__all__ = ["MusegenConfig", "MusegenLM", "StyleTable", "key_row", "save_checkpoint",
           "load_checkpoint", "pick_device", "available_devices", "guided_logits"]
