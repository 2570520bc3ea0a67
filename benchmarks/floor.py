"""How fast can a decode step be on this CPU, and where does a request's time go?

1. the step's matmuls alone (every matrix of one step, nothing else) at batch 1/4/16, in
   torch and in ONNX Runtime's own kernels;
2. the memory-traffic floor: the step's weight bytes / measured copy bandwidth (a DRAM-sized
   copy, and a copy the size of the weights, which stay in the last-level cache between steps);
3. whole steps, torch (`decode.Decoder`) and ONNX Runtime (`fast.OrtDecoder`), prompt 256;
4. one real request (folk, 8 bars x 4) split between the forward and the rest of the sampler:
   masks (`Pipeline.apply`), the draw, grammar stepping (`Row.push`), constraints' advance,
   and the Python loop around them;
5. a model ~2.3x the shipped one (random weights, 6 layers x 320) on the same request shape.

    python -m benchmarks.floor --out benchmarks/results/floor.md

Medians of `--reps` repeats; `--threads` for both runtimes (default 1: on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or platform.machine()
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = set(info.get("Flags", "").split())
    keep = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16") if f in flags]
    return (f"{info.get('Model name', '?').strip()} (vendor {info.get('Vendor ID', '?').strip()}, family "
            f"{info.get('CPU family', '?').strip()} model {info.get('Model', '?').strip()}; "
            f"{os.cpu_count()} cores; L3 {info.get('L3 cache', '?').strip()}; flags {' '.join(keep)})")


def bandwidth_gb_s(nbytes: int, reps: int = 20) -> float:
    """Copy bandwidth (bytes read + written per second) for arrays of `nbytes`."""
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.copyto(b, a)
        ts.append(time.perf_counter() - t0)
    return 2 * nbytes / statistics.median(ts) / 1e9


def matrices(w) -> list[torch.Tensor]:
    return [m for layer in w.layers for m in layer] + [w.head]


def matmuls_torch(w, B: int, steps: int = 200) -> float:
    mats = matrices(w)
    xs = {m.shape[0]: torch.randn(B, m.shape[0]) for m in mats}
    for m in mats:
        xs[m.shape[0]] @ m
    t0 = time.perf_counter()
    for _ in range(steps):
        for m in mats:
            xs[m.shape[0]] @ m
    return (time.perf_counter() - t0) / steps * 1e3


def matmuls_ort(w, B: int, threads: int, steps: int = 200) -> float:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    mats = matrices(w)
    dims = sorted({m.shape[0] for m in mats})
    inits = [numpy_helper.from_array(m.numpy(), f"w{i}") for i, m in enumerate(mats)]
    nodes = [helper.make_node("MatMul", [f"x{m.shape[0]}", f"w{i}"], [f"y{i}"]) for i, m in enumerate(mats)]
    graph = helper.make_graph(nodes, "matmuls",
                              [helper.make_tensor_value_info(f"x{d}", TensorProto.FLOAT, [B, d]) for d in dims],
                              [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None)
                               for i in range(len(mats))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = {f"x{d}": np.random.randn(B, d).astype(np.float32) for d in dims}
    io = sess.io_binding()
    for k, v in feeds.items():
        io.bind_cpu_input(k, v)
    for i in range(len(mats)):
        io.bind_output(f"y{i}")
    sess.run_with_iobinding(io)
    t0 = time.perf_counter()
    for _ in range(steps):
        sess.run_with_iobinding(io)
    return (time.perf_counter() - t0) / steps * 1e3


def step_ms(model, make, B: int, steps: int = 230) -> float:
    from musegen.generate.decode import DecodeWeights

    w = DecodeWeights.of(model)
    dec = make(w, steps + 1)
    dec.start(torch.randint(3, model.cfg.vocab_size, (1, 256)), model.styles.weight[1:2].detach(),
              torch.zeros(B, dtype=torch.long))
    ids = torch.randint(3, model.cfg.vocab_size, (B,))
    t0 = time.perf_counter()
    for _ in range(steps):
        dec.step(ids)
    return (time.perf_counter() - t0) / steps * 1e3


@contextmanager
def timed(owner: object, name: str, acc: dict, key: str):
    """Wrap owner.name so its time adds up in acc[key]."""
    orig = getattr(owner, name)

    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return orig(*a, **k)
        finally:
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t0
    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, orig)


def breakdown(studio, clip, seed: int) -> dict:
    """Seconds of one folk request by part, and its steps."""
    from musegen.generate import constraints, decode, draw, run

    acc: dict = {}
    parts = [(decode.Stream, "logits", "forward"), (decode.Stream, "feed", "forward"),
             (decode.Stream, "__init__", "prefill"),
             (constraints.Pipeline, "apply", "masks and biases"), (draw, "draw", "draw"),
             (constraints.Row, "push", "grammar stepping"), (constraints.Pipeline, "advance", "constraints' advance")]
    from contextlib import ExitStack

    with ExitStack() as st:
        for owner, name, key in parts:
            st.enter_context(timed(owner, name, acc, key))
        st.enter_context(timed(run, "sample", acc, "sample()"))
        t0 = time.perf_counter()
        takes = studio.continue_(clip, bars=8, variations=4, seed=seed)
        acc["request"] = time.perf_counter() - t0
    acc["longest take, tokens"] = max(len(t.tokens) for t in takes)
    return acc


def big_model_request(studio, threads: int, reps: int) -> tuple[float, int]:
    """A random-weight model 6 x 320 (d_ff 960) on the folk request: bars closed after 28 tokens
    (about the shipped model's take length) since random weights would run every bar long."""
    from musegen.generate import fast
    from musegen.generate.decode import Decoder, DecodeWeights
    from musegen.generate.sampler import SampleParams, sample
    from musegen.model import MusegenConfig, MusegenLM

    cfg0 = studio.model.cfg
    cfg = MusegenConfig.from_dict({**cfg0.to_dict(), "d_model": 320, "n_heads": 5, "n_layers": 6, "d_ff": 960})
    torch.manual_seed(0)
    big = MusegenLM(cfg).eval()
    ratio = big.num_parameters() / studio.model.num_parameters()
    from musegen import Clip
    from musegen.examples import example_path

    tok = studio.tok
    ids = tok.encode(Clip.load(example_path("folk")), eos=False).astype(np.int64)
    state = tok.grammar.validate(ids)
    make = fast.decoder_factory(DecodeWeights.of(big), threads) if studio.backend == "onnx" else Decoder
    sp = SampleParams(max_tokens_per_bar=28)
    styles = big.styles.weight[1:2].detach().expand(4, -1)
    ts = []
    for r in range(reps):
        t0 = time.perf_counter()
        sample(big, tok, ids, state, styles, 8, [r, r + 1, r + 2, r + 3], sp, forced=[tok.vocab.bar],
               make_decoder=make)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ratio


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from musegen import Clip
    from musegen.examples import example_path
    from musegen.generate import fast
    from musegen.generate.decode import Decoder, DecodeWeights
    from musegen.studio import Studio

    load = os.getloadavg()
    lines = ["# The decode floor on this CPU", "",
             f"CPU: {cpu_name()}; torch {torch.__version__}, "
             + (f"onnxruntime {__import__('onnxruntime').__version__}" if fast.available() else "no onnxruntime")
             + f"; {args.threads} thread(s); medians of {args.reps}; load average at start "
             f"{load[0]:.1f} (the machine was shared: absolute times are inflated, compare within a table).",
             f"`python -m benchmarks.floor --threads {args.threads} --reps {args.reps}`", ""]
    studio = {b: Studio(threads=args.threads, backend=b) for b in ("torch", "onnx")}
    model = studio["torch"].model
    w = DecodeWeights.of(model)
    wbytes = sum(m.numel() * 4 for m in matrices(w))
    bw_dram, bw_llc = bandwidth_gb_s(256 << 20), bandwidth_gb_s(wbytes)
    lines += ["## 1-3. One step: matmuls alone, the memory floor, whole steps (ms)", "",
              f"Weights read per step: {wbytes / 1e6:.1f} MB. Copy bandwidth: {bw_dram:.1f} GB/s for 256 MB "
              f"(DRAM), {bw_llc:.1f} GB/s for {wbytes / 1e6:.0f} MB (cache-resident, as the weights are "
              "between steps). Floor = weight bytes / bandwidth.", "",
              "| batch | floor, DRAM bw | floor, cache bw | matmuls alone, torch | matmuls alone, ORT "
              "| step, torch | step, ORT (fast path) | fast path / DRAM floor |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rt_make = fast.decoder_factory(w, args.threads)
    for B in (1, 4, 16):
        mt = statistics.median(matmuls_torch(w, B) for _ in range(args.reps))
        mo = statistics.median(matmuls_ort(w, B, args.threads) for _ in range(args.reps))
        st = statistics.median(step_ms(model, Decoder, B) for _ in range(args.reps))
        so = statistics.median(step_ms(model, rt_make, B) for _ in range(args.reps))
        f_d, f_c = wbytes / bw_dram / 1e6, wbytes / bw_llc / 1e6
        lines.append(f"| {B} | {f_d:.2f} | {f_c:.2f} | {mt:.2f} | {mo:.2f} | {st:.2f} | {so:.2f} | {so / f_d:.1f}x |")
    clip = Clip.load(example_path("folk"))
    lines += ["", "## 4. Where one request's time goes (folk, 8 bars x 4; s per request)", "",
              "| part | torch path | fast path |", "|---|---:|---:|"]
    res = {}
    for b, s in studio.items():
        s.continue_(clip, bars=8, variations=4, seed=0)  # warm-up
        runs = [breakdown(s, clip, 100 + r) for r in range(args.reps)]
        res[b] = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}
    keys = ["request", "sample()", "prefill", "forward", "masks and biases", "draw", "grammar stepping",
            "constraints' advance"]
    for k in keys:
        lines.append(f"| {k} | {res['torch'][k]:.3f} | {res['onnx'][k]:.3f} |")
    for b in res:
        r = res[b]
        r["python and the rest"] = r["sample()"] - sum(r[k] for k in keys[2:])
    lines.append(f"| Python loop and the rest of sample() | {res['torch']['python and the rest']:.3f} | "
                 f"{res['onnx']['python and the rest']:.3f} |")
    lines.append(f"| outside sample() (prompt, decoding takes, novelty) | "
                 f"{res['torch']['request'] - res['torch']['sample()']:.3f} | "
                 f"{res['onnx']['request'] - res['onnx']['sample()']:.3f} |")
    lines += ["", "## 5. A larger model (random weights) on the same request shape", ""]
    for b in ("torch", "onnx"):
        t, ratio = big_model_request(studio[b], args.threads, args.reps)
        lines.append(f"- {b}: 6 layers x 320 ({ratio:.1f}x the shipped model's parameters), 8 bars x 4 "
                     f"(bars closed at 28 tokens): median {t:.3f} s; the shipped model's folk request on "
                     f"the torch path, same run: {res['torch']['request']:.3f} s.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
