"""The fast CPU path: the decode step as one ONNX Runtime graph (optional, `pip install musegen[fast]`).

The torch step (`decode.Decoder`) stays the reference and the path for CUDA/MPS. On a CPU,
MKL's small-batch float32 matmul is slow on some CPUs (3.1 ms for one step's matrices at batch
4 on a Zen-1 EPYC, against 0.7 ms in ONNX Runtime's own kernels), and eager torch pays a
Python call per tiny kernel; ONNX Runtime runs the whole step as one call.

The graph (`step_graph`) is built from the same rearranged weights as the torch step
(`decode.DecodeWeights`: folded norms, fused q/k/v and gate/up, interleaved rotary pairs), so
the prompt is prefilled by the torch Decoder and its keys go straight into the graph's cache.
Every layer's cache is its own input, laid out so that nothing is sliced or copied per step:

* the prompt's keys (U, nh, hd, P) and values (U, nh, P, hd), shared by the G = B / U rows of
  each prefix (`decode.Decoder` does the same in torch);
* each row's own keys (B, nh, hd, C) and values (B, nh, C, hd) in a buffer of C slots, with a
  (C,) additive mask (0 for a written slot, -inf otherwise); the step returns the new token's
  key and value, which `OrtDecoder` writes into slot S. C grows in chunks, so a step reads at
  most `CHUNK` unwritten slots.

Inputs and outputs are bound once to numpy buffers (I/O binding) and rebound only when a
buffer is replaced (growth, rows leaving). The serialized graph is cached on disk under the
model's hash (`graph_path`), so it is built once per model, never per request.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from musegen.errors import ParameterError
from musegen.generate.decode import Decoder, DecodeWeights

CHUNK = 64  # own-token slots added at a time
GRAPH_VERSION = 1  # bump when step_graph changes: cached graphs of other versions are not read
BACKENDS = ("auto", "torch", "onnx")
BACKEND_ENV = "MUSEGEN_BACKEND"  # the default when no backend is given
MISSING = "onnxruntime is not installed: decoding with torch (pip install 'musegen[fast]' for the fast CPU path)"


def available() -> bool:
    """Whether ONNX Runtime and onnx are installed (looked up, not imported: importing them
    costs ~0.5 s, paid on the first request instead of at `Studio()`)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def resolve(backend: str | None, device: torch.device) -> str:
    """"torch", "onnx" or "auto" for a requested backend (None: $MUSEGEN_BACKEND, else "auto").
    "auto" stays only on a CPU with ONNX Runtime installed, where `choose` settles it by a
    measured probe; asked for and missing, or asked for off the CPU, the torch path is used
    with one warning saying so."""
    want = backend or os.environ.get(BACKEND_ENV) or "auto"
    if want not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {want!r}")
    if want == "torch":
        return "torch"
    if device.type != "cpu":
        if want == "onnx":
            warnings.warn(f"backend 'onnx' runs on the CPU only: decoding with torch on {device}",
                          stacklevel=2)
        return "torch"
    if not available():
        if not _warned:
            _warned.append(True)
            warnings.warn(MISSING, stacklevel=2)
        return "torch"
    return want


PROBE_ROWS, PROBE_PROMPT, PROBE_STEPS, PROBE_ROUNDS = 4, 256, 48, 3  # a 4-take request's shape
PROBE_VERSION = 1  # bump when the probe changes: older choices are measured again


def cpu_id() -> str:
    """This CPU as a string: its model name and feature flags (Linux), else what `platform`
    knows. Two machines with the same string decode alike."""
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        return " | ".join([fields.get("vendor_id", ""), fields.get("cpu family", ""),
                           fields.get("model", ""), fields.get("model name", ""),
                           fields.get("flags", fields.get("Features", ""))])
    except OSError:
        return f"{platform.machine()} | {platform.processor()} | {platform.platform()}"


def step_seconds(dec: Decoder, w: DecodeWeights, seed: int) -> float:
    """Mean seconds per decode step of `dec`: `PROBE_ROWS` rows after a `PROBE_PROMPT`-token
    prompt, `PROBE_STEPS` steps timed after 8 warm-up steps."""
    import time

    g = torch.Generator().manual_seed(seed)
    V = w.cfg.vocab_size
    ids = torch.randint(0, V, (8 + PROBE_STEPS, PROBE_ROWS), generator=g)
    dec.start(torch.randint(0, V, (1, PROBE_PROMPT), generator=g), torch.zeros(1, w.d),
              torch.zeros(PROBE_ROWS, dtype=torch.long))
    for t in range(8):
        dec.step(ids[t])
    t0 = time.perf_counter()
    for t in range(8, 8 + PROBE_STEPS):
        dec.step(ids[t])
    return (time.perf_counter() - t0) / PROBE_STEPS


def probe(w: DecodeWeights, threads: int) -> dict:
    """Both paths' decode step on this CPU, side by side, alternating for `PROBE_ROUNDS`
    rounds (the best of each, so a burst of other load does not decide):
    {"torch_ms", "onnx_ms", "backend"} (the faster). About a second for the shipped model."""
    capacity = 8 + PROBE_STEPS + 1
    rt = Runtime.of(w, threads)
    best = {"torch": math.inf, "onnx": math.inf}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            for r in range(PROBE_ROUNDS):
                best["torch"] = min(best["torch"], step_seconds(Decoder(w, capacity), w, r))
                best["onnx"] = min(best["onnx"], step_seconds(OrtDecoder(w, capacity, rt), w, r))
    finally:
        torch.set_num_threads(before)
    return {"torch_ms": round(best["torch"] * 1e3, 4), "onnx_ms": round(best["onnx"] * 1e3, 4),
            "backend": "onnx" if best["onnx"] < best["torch"] else "torch"}


def cpu_name() -> str:
    return next((p.strip() for p in cpu_id().split(" | ")[3:4] if p.strip()), "") or cpu_id()[:80]


def choice_path(w: DecodeWeights, threads: int) -> Path:
    import onnxruntime as ort

    key = f"{PROBE_VERSION}|{cpu_id()}|{weights_digest(w)}|{threads}|{torch.__version__}|{ort.__version__}"
    return cache_dir() / f"choice-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def choose(w: DecodeWeights, threads: int) -> str:
    """What "auto" decodes with on this CPU for these weights and threads: the path `probe`
    measured faster, measured once and kept on disk (`choice_path`; an unreadable record is
    measured again). ONNX Runtime's kernels beat MKL's small-batch matmuls on some CPUs and
    lose to them on others (Zen 3 with AVX2), so no fixed rule picks well."""
    import json

    from musegen.atomic import write_text

    path = choice_path(w, threads)
    try:
        found = json.loads(path.read_text())
        if found.get("backend") in ("torch", "onnx"):
            return found["backend"]
    except (OSError, ValueError, AttributeError):
        pass
    rec = probe(w, threads)
    rec.update(threads=threads, cpu=cpu_name())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(rec, indent=1) + "\n")
    return rec["backend"]


_warned: list[bool] = []


def decoder_factory(w: DecodeWeights, threads: int) -> Callable[[DecodeWeights, int], Decoder]:
    """What `decode.Stream` makes its decoders with on the fast path."""
    Runtime.of(w, threads)  # the session now, not inside the first step
    return lambda weights, capacity: OrtDecoder(weights, capacity, Runtime.of(weights, threads))


def cache_dir() -> Path:
    home = os.environ.get("MUSEGEN_HOME")
    base = Path(home).expanduser() if home else Path("~/.cache/musegen").expanduser()
    return base / "onnx"


def weights_digest(w: DecodeWeights) -> str:
    """A hash of the weights as the graph holds them (and of the graph's version)."""
    h = hashlib.sha1(f"v{GRAPH_VERSION}".encode())
    for t in (w.emb, w.head, *(m for layer in w.layers for m in layer)):
        h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
    return h.hexdigest()[:16]


def step_graph(w: DecodeWeights) -> bytes:
    """The serialized ONNX model of one decode step (see the module docstring)."""
    from onnx import TensorProto, helper, numpy_helper

    cfg = w.cfg
    nh, hd, d, V = w.nh, w.hd, w.d, cfg.vocab_size
    f32 = TensorProto.FLOAT
    nodes, inits = [], []
    n = [0]

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(kind: str, inputs: list[str], n_out: int = 1, **attrs: object) -> list[str] | str:
        n[0] += 1
        outs = [f"{kind.lower()}{n[0]}_{i}" for i in range(n_out)]
        nodes.append(helper.make_node(kind, inputs, outs, **attrs))
        return outs if n_out > 1 else outs[0]

    def const(name: str, values: list[int]) -> str:
        return init(name, np.array(values, dtype=np.int64))

    eps = init("eps", np.array(w.eps, dtype=np.float32))
    ax_last = const("ax_last", [-1])

    def norm(x: str) -> str:  # x * rsqrt(sum(x^2) + d*eps): gains folded into the next matrix
        ss = op("ReduceSum", [op("Mul", [x, x]), ax_last], keepdims=1)
        return op("Mul", [x, op("Reciprocal", [op("Sqrt", [op("Add", [ss, eps])])])])

    emb = init("emb", w.emb.cpu().numpy())
    x = op("Add", [op("Gather", [emb, "ids"], axis=0), "style"])  # (B, d)
    sh_qk = const("sh_qk", [-1, 2, nh, hd // 2, 2])
    sh_bnh = const("sh_bnh", [-1, nh, hd])
    sh_b4 = const("sh_b4", [-1, nh, 1, hd])
    sh_bd = const("sh_bd", [-1, d])
    split_qk = const("split_qk", [2 * d, d])
    split_gu = const("split_gu", [cfg.d_ff, cfg.d_ff])
    scale = 1.0 / math.sqrt(hd)
    for i, (wqkv, wo, wgu, wdown) in enumerate(w.layers):
        wqkv = wqkv.cpu().numpy().copy()
        wqkv[:, :d] *= scale  # the attention scale, folded into q
        qkv = op("MatMul", [norm(x), init(f"wqkv{i}", wqkv)])  # (B, 3d)
        qk, v = op("Split", [qkv, split_qk], 2, axis=-1)
        # rotary: pairs (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos)
        x0, x1 = op("Split", [op("Reshape", [qk, sh_qk])], 2, axis=-1)  # (B, 2, nh, hd/2, 1)
        r0 = op("Sub", [op("Mul", [x0, "cos"]), op("Mul", [x1, "sin"])])
        r1 = op("Add", [op("Mul", [x0, "sin"]), op("Mul", [x1, "cos"])])
        rot = op("Concat", [r0, r1], axis=-1)  # (B, 2, nh, hd/2, 2)
        q, k = op("Split", [op("Reshape", [rot, const(f"sh_2bnh{i}", [-1, 2, nh, hd])])], 2, axis=1)
        q = op("Reshape", [q, sh_bnh])  # (B, nh, hd), scaled
        nodes.append(helper.make_node("Reshape", [k, sh_bnh], [f"k{i}"]))  # new key (B, nh, hd)
        nodes.append(helper.make_node("Reshape", [v, sh_bnh], [f"v{i}"]))
        # scores against the prompt (per prefix), own tokens (per row), and the token itself
        qg = op("Transpose", [op("Reshape", [q, "shape_g"])], perm=[0, 2, 1, 3])  # (U, nh, G, hd)
        s_pre = op("MatMul", [qg, f"kp{i}"])  # (U, nh, G, P)
        q4 = op("Reshape", [q, sh_b4])  # (B, nh, 1, hd)
        s_own = op("Add", [op("MatMul", [q4, f"ks{i}"]), "mask"])  # (B, nh, 1, C)
        s_own = op("Transpose", [op("Reshape", [s_own, "shape_g"])], perm=[0, 2, 1, 3])
        s_self = op("ReduceSum", [op("Mul", [q, f"k{i}"]), ax_last], keepdims=1)  # (B, nh, 1)
        s_self = op("Transpose", [op("Reshape", [s_self, "shape_g"])], perm=[0, 2, 1, 3])
        p = op("Softmax", [op("Concat", [s_pre, s_own, s_self], axis=-1)], axis=-1)
        p_pre, p_own, p_self = op("Split", [p, "split_att"], 3, axis=-1)
        y_pre = op("MatMul", [p_pre, f"vp{i}"])  # (U, nh, G, hd)
        p_own = op("Reshape", [op("Transpose", [p_own], perm=[0, 2, 1, 3]), "shape_b1"])
        y_own = op("MatMul", [p_own, f"vs{i}"])  # (B, nh, 1, hd)
        y_own = op("Transpose", [op("Reshape", [y_own, "shape_g"])], perm=[0, 2, 1, 3])
        vg = op("Transpose", [op("Reshape", [f"v{i}", "shape_g"])], perm=[0, 2, 1, 3])
        y = op("Add", [op("Add", [y_pre, y_own]), op("Mul", [p_self, vg])])  # (U, nh, G, hd)
        y = op("Reshape", [op("Transpose", [y], perm=[0, 2, 1, 3]), sh_bd])
        x = op("Add", [x, op("MatMul", [y, init(f"wo{i}", wo.cpu().numpy())])])
        g, u = op("Split", [op("MatMul", [norm(x), init(f"wgu{i}", wgu.cpu().numpy())]), split_gu],
                  2, axis=-1)
        act = op("Mul", [op("Mul", [g, op("Sigmoid", [g])]), u])
        x = op("Add", [x, op("MatMul", [act, init(f"wdown{i}", wdown.cpu().numpy())])])
    nodes.append(helper.make_node("MatMul", [norm(x), init("head", w.head.cpu().numpy())], ["logits"]))

    def vi(name: str, elem: int, shape: list) -> object:
        return helper.make_tensor_value_info(name, elem, shape)

    inputs = [vi("ids", TensorProto.INT64, ["B"]), vi("style", f32, ["B", d]),
              vi("cos", f32, [hd // 2, 1]), vi("sin", f32, [hd // 2, 1]), vi("mask", f32, ["C"]),
              vi("shape_g", TensorProto.INT64, [4]), vi("shape_b1", TensorProto.INT64, [4]),
              vi("split_att", TensorProto.INT64, [3])]
    outputs = [vi("logits", f32, ["B", V])]
    for i in range(len(w.layers)):
        inputs += [vi(f"kp{i}", f32, ["U", nh, hd, "P"]), vi(f"vp{i}", f32, ["U", nh, "P", hd]),
                   vi(f"ks{i}", f32, ["B", nh, hd, "C"]), vi(f"vs{i}", f32, ["B", nh, "C", hd])]
        outputs += [vi(f"k{i}", f32, ["B", nh, hd]), vi(f"v{i}", f32, ["B", nh, hd])]
    graph = helper.make_graph(nodes, "musegen_step", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="musegen")
    model.ir_version = 8
    return model.SerializeToString()


def graph_path(w: DecodeWeights) -> Path:
    """The step graph of these weights on disk, built on first use (written atomically)."""
    from musegen.atomic import write_bytes

    path = cache_dir() / f"step-{weights_digest(w)}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, step_graph(w))
    return path


class Runtime:
    """An ONNX Runtime session of one model's step graph, for `threads` CPU threads."""

    def __init__(self, w: DecodeWeights, threads: int) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # no busy-waiting between runs: between two steps the sampler's Python and torch work
        # needs the cores, and spinning workers took them (folk 8 bars x 4, 2 threads, idle
        # Zen 3: 2.05 s spinning vs 0.90 s not; torch path 1.25 s)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = threads
        self.session = ort.InferenceSession(str(graph_path(w)), so, providers=["CPUExecutionProvider"])
        self.ort = ort

    @classmethod
    def of(cls, w: DecodeWeights, threads: int) -> Runtime:
        """One session per (weights, threads), kept while the weights live (`_RUNTIMES`)."""
        cache = _RUNTIMES.setdefault(w, {})
        if threads not in cache:
            cache[threads] = cls(w, threads)
        return cache[threads]


_RUNTIMES: weakref.WeakKeyDictionary[DecodeWeights, dict[int, Runtime]] = weakref.WeakKeyDictionary()


class OrtDecoder(Decoder):
    """`decode.Decoder` with its step in ONNX Runtime: the same prefill (torch), the same
    `start` / `keep` / `step` contract, logits as torch tensors over numpy buffers."""

    def __init__(self, w: DecodeWeights, capacity: int, rt: Runtime) -> None:
        super().__init__(w, capacity)
        self.rt = rt

    @torch.no_grad()
    def start(self, prefix_ids: torch.Tensor, prefix_styles: torch.Tensor, row_prefix: torch.Tensor
              ) -> torch.Tensor:
        last = super().start(prefix_ids, prefix_styles, row_prefix)
        w = self.w
        if self.base:  # own caches: each row's prompt is its prefix (U = B, G = 1)
            P = self.P
            kp = [k[:, :, :P] for k, _ in self.suffix]
            vp = [v[:, :, :P] for _, v in self.suffix]
            self.group = 1
        else:
            kp = [k for k, _ in self.prefix]
            vp = [v for _, v in self.prefix]
        self.kp = [np.ascontiguousarray(k.transpose(-1, -2).numpy()) for k in kp]  # (U, nh, hd, P)
        self.vp = [np.ascontiguousarray(v.numpy()) for v in vp]  # (U, nh, P, hd)
        self.prefix, self.suffix, self.base = [], [], 0
        B = self.styles.shape[0]
        self.style_np = np.ascontiguousarray(self.styles.numpy(), dtype=np.float32)
        self.C = 0
        self.ks: list[np.ndarray] = [np.empty((B, w.nh, w.hd, 0), np.float32) for _ in self.kp]
        self.vs: list[np.ndarray] = [np.empty((B, w.nh, 0, w.hd), np.float32) for _ in self.kp]
        self._grow()
        return last

    def _grow(self) -> None:
        """More own-token slots (CHUNK at a time, at most `capacity`)."""
        B = self.style_np.shape[0]
        C = min(self.capacity, self.C + CHUNK)
        nh, hd, S = self.w.nh, self.w.hd, self.S
        for i in range(len(self.ks)):
            ks, vs = np.zeros((B, nh, hd, C), np.float32), np.zeros((B, nh, C, hd), np.float32)
            ks[..., :S], vs[:, :, :S] = self.ks[i][..., :S], self.vs[i][:, :, :S]
            self.ks[i], self.vs[i] = ks, vs
        self.mask = np.full(C, -np.inf, np.float32)
        self.mask[:S] = 0
        self.C = C
        self._bind()

    def _bind(self) -> None:
        """Bind every input and output buffer (again, after one was replaced)."""
        B = self.style_np.shape[0]
        U = self.kp[0].shape[0]
        G = B // U
        w, P = self.w, self.kp[0].shape[-1]
        self.ids = np.zeros(B, np.int64)
        half = w.hd // 2
        self.cos, self.sin = np.zeros((half, 1), np.float32), np.zeros((half, 1), np.float32)
        self.shape_g = np.array([U, G, w.nh, -1], np.int64)
        self.shape_b1 = np.array([B, w.nh, 1, self.C], np.int64)
        self.split_att = np.array([P, self.C, 1], np.int64)
        self.logits_np = np.empty((B, w.cfg.vocab_size), np.float32)
        self.k_new = [np.empty((B, w.nh, w.hd), np.float32) for _ in self.ks]
        self.v_new = [np.empty((B, w.nh, w.hd), np.float32) for _ in self.ks]
        io = self.rt.session.io_binding()
        feeds = {"ids": self.ids, "style": self.style_np, "cos": self.cos, "sin": self.sin,
                 "mask": self.mask, "shape_g": self.shape_g, "shape_b1": self.shape_b1,
                 "split_att": self.split_att}
        for i in range(len(self.ks)):
            feeds.update({f"kp{i}": self.kp[i], f"vp{i}": self.vp[i], f"ks{i}": self.ks[i],
                          f"vs{i}": self.vs[i]})
        for name, arr in feeds.items():
            io.bind_cpu_input(name, arr)
        outs = {"logits": self.logits_np}
        for i in range(len(self.ks)):
            outs.update({f"k{i}": self.k_new[i], f"v{i}": self.v_new[i]})
        for name, arr in outs.items():
            io.bind_output(name, "cpu", 0, _ELEM[arr.dtype], list(arr.shape), arr.ctypes.data)
        self.io = io

    @torch.no_grad()
    def keep(self, rows: torch.Tensor) -> None:
        B = self.style_np.shape[0]
        if rows.numel() == B:
            return
        r = rows.cpu().numpy()
        U = self.kp[0].shape[0]
        if U > 1 or rows.numel() == 1:  # blocks broken up: each row its own prefix
            src = r // self.group
            self.kp = [np.ascontiguousarray(k[src]) for k in self.kp]
            self.vp = [np.ascontiguousarray(v[src]) for v in self.vp]
        self.group = rows.numel() // self.kp[0].shape[0]
        self.ks = [np.ascontiguousarray(k[r]) for k in self.ks]
        self.vs = [np.ascontiguousarray(v[r]) for v in self.vs]
        self.styles = self.styles[rows]
        self.style_np = np.ascontiguousarray(self.style_np[r])
        self._bind()

    @torch.no_grad()
    def step(self, ids: torch.Tensor) -> torch.Tensor:
        s = self.S
        if s >= self.capacity:
            raise RuntimeError("decode cache full: start a new Decoder on a shorter window")
        if s >= self.C:
            self._grow()
        self.ids[:] = ids.numpy()
        c = self.w.cis(self.P + s, 1)[0]
        self.cos[:, 0], self.sin[:, 0] = c.real.numpy(), c.imag.numpy()
        self.rt.session.run_with_iobinding(self.io)
        for i in range(len(self.ks)):
            self.ks[i][..., s] = self.k_new[i]
            self.vs[i][:, :, s] = self.v_new[i]
        self.mask[s] = 0
        self.S = s + 1
        return torch.from_numpy(self.logits_np.copy())  # the buffer is the next step's


_ELEM = {np.dtype(np.float32): np.float32, np.dtype(np.int64): np.int64}
