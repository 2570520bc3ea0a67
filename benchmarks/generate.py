"""Generation speed: musegen's engine against stock `transformers` `generate()` on the same
weights and prompt.

Cases: (a) an 8-bar continuation x 4 variations of a folk melody, (b) the same for a 4-voice
Bach chorale. Our engine runs the full request (grammar, filters, exact bar count, decoding to
a Clip, novelty check). Stock `generate()` (`num_return_sequences=4`, no constraints) is timed
on two requests:

* "8 bars": the same request, each row until its 8 bars are complete (a `StoppingCriteria`
  that counts BAR tokens, or EOS). Like ours, the batch lasts as long as its longest row.
* "fixed length": exactly as many new tokens per row as the median of our takes; a shortcut
  no user of stock `generate()` has (the lengths are only known after our run), kept as the
  per-token comparison.

Each engine runs in its own process so peak memory is its own.

    python -m benchmarks.generate --model musegen/models/default --out benchmarks/results/generate.md

`--threads N` gives both engines N torch threads (default: each its own, as a user gets it);
on a machine shared with other work, compare both at `--threads 1` under `taskset -c 0`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {"a-folk": "folk", "b-chorale": "chorale"}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_ours(model: str, case: str, runs: int, device: str, threads: int, backend: str = "auto") -> dict:
    import torch

    from musegen import Clip
    from musegen.examples import example_path
    from musegen.studio import Studio

    torch.set_num_threads(threads or os.cpu_count() or 1)
    studio = Studio(model=model, device=device, threads=threads or None, backend=backend)
    clip = Clip.load(example_path(CASES[case]))
    studio.continue_(clip, bars=8, variations=4, seed=0)  # warm-up
    times, first, tokens = [], [], []
    for r in range(runs):
        t0 = time.perf_counter()
        takes = studio.continue_(clip, bars=8, variations=4, seed=100 + r)
        times.append(time.perf_counter() - t0)
        first.append(takes[0].first_bar_s)
        tokens.append([len(t.tokens) for t in takes])
        assert all(t.clip.n_bars == 8 for t in takes)
    return {"times": times, "first_bar": first, "tokens": tokens,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_stock(model: str, case: str, runs: int, device: str, new_tokens: int, threads: int,
              until_bars: bool = False) -> dict:
    """Stock `generate()` on the same weights and prompt. Fixed length: `new_tokens` per row.
    `until_bars`: the equivalent request, every row until it has 8 whole bars (its 9th BAR,
    the one that would open bar 9, or EOS) by a `StoppingCriteria`, as a user of stock
    `generate()` would ask for 8 bars; the batch runs until its last row is done."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, StoppingCriteria, StoppingCriteriaList

    from musegen import Clip
    from musegen.examples import example_path
    from musegen.studio import resolve_model_dir
    from musegen.tokenizer import Tokenizer

    torch.set_num_threads(threads or os.cpu_count() or 1)
    path = resolve_model_dir(model)
    hf = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).to(device).eval()
    tok = Tokenizer.load(path)
    ids = tok.encode(Clip.load(example_path(CASES[case])), eos=False).astype(np.int64)
    ids = ids[-256:]  # the same prompt budget our engine uses (half the training window)
    x = torch.from_numpy(ids)[None].to(device)
    kw = {"do_sample": True, "top_p": 0.95, "temperature": 1.0, "max_new_tokens": new_tokens,
          "min_new_tokens": new_tokens, "num_return_sequences": 4, "pad_token_id": 0}
    if until_bars:
        class EightBars(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_) -> torch.Tensor:
                new = input_ids[:, x.shape[1]:]
                return ((new == tok.vocab.bar).sum(1) >= 9) | (new == tok.vocab.eos).any(1)

        kw = {**kw, "max_new_tokens": 8 * 320 + 8, "min_new_tokens": 0,
              "stopping_criteria": StoppingCriteriaList([EightBars()])}
    with torch.no_grad():
        hf.generate(x, **{**kw, "max_new_tokens": 8, "min_new_tokens": 8})  # warm-up
        times, lengths = [], []
        for r in range(runs):
            torch.manual_seed(r)
            t0 = time.perf_counter()
            y = hf.generate(x, **kw)
            times.append(time.perf_counter() - t0)
            lengths.append(y.shape[1] - x.shape[1])
    return {"times": times, "steps": lengths,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(args: argparse.Namespace) -> None:
    if args.engine.startswith("ours"):
        backend = args.engine.partition(":")[2] or "auto"
        out = run_ours(args.model, args.case, args.runs, args.device, args.threads, backend)
    else:
        out = run_stock(args.model, args.case, args.runs, args.device, args.new_tokens, args.threads,
                        until_bars=args.engine == "stock-bars")
    print("RESULT " + json.dumps(out))


def _spawn(engine: str, case: str, args: argparse.Namespace, new_tokens: int = 0) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.generate", "--child", "--engine", engine, "--case", case,
           "--model", args.model, "--runs", str(args.runs), "--device", args.device,
           "--new-tokens", str(new_tokens), "--threads", str(args.threads), "--backend", args.backend]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--engine", default="ours")
    ap.add_argument("--case", default="a-folk")
    ap.add_argument("--new-tokens", type=int, default=0)
    ap.add_argument("--backend", default="auto", help="musegen's decode path (auto, torch, onnx); "
                    "the torch path is also timed, as the reference")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads for both engines (default: each engine's own: "
                         "stock all cores, musegen all cores up to 4)")
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    import torch
    import transformers

    rows = []
    for case in CASES:
        ours = _spawn(f"ours:{args.backend}", case, args)
        ref = _spawn("ours:torch", case, args)  # the reference path, same run
        per_take = [t for run in ours["tokens"] for t in run]
        n_new = int(statistics.median(per_take))
        stock = _spawn("stock", case, args, n_new)
        bars = _spawn("stock-bars", case, args)
        total_tokens = statistics.median([sum(r) for r in ours["tokens"]])
        med_o, med_s = statistics.median(ours["times"]), statistics.median(stock["times"])
        med_b = statistics.median(bars["times"])
        rows.append({
            "case": case, "tokens_per_take": n_new,
            "ours_longest": statistics.median([max(r) for r in ours["tokens"]]),
            "ours_median_s": med_o, "ours_p95_s": _pct(ours["times"], 0.95),
            "ours_tok_s": total_tokens / med_o,
            "ours_first_bar_s": statistics.median(ours["first_bar"]),
            "ours_peak_rss_mb": ours["peak_rss_mb"],
            "stock_median_s": med_s, "stock_p95_s": _pct(stock["times"], 0.95),
            "stock_tok_s": 4 * n_new / med_s, "stock_peak_rss_mb": stock["peak_rss_mb"],
            "speedup": med_s / med_o,
            "bars_steps": statistics.median(bars["steps"]),
            "bars_median_s": med_b, "bars_p95_s": _pct(bars["times"], 0.95),
            "bars_speedup": med_b / med_o,
            "torch_median_s": statistics.median(ref["times"]),
            "torch_bars_speedup": med_b / statistics.median(ref["times"]),
        })
    cpu = platform.processor() or platform.machine()
    if args.device.startswith("cuda"):
        cpu = torch.cuda.get_device_name(0)
    lines = [
        "# Generation speed: 8 bars x 4 variations", "",
        f"Device: {args.device} ({cpu}, {os.cpu_count()} cores); torch {torch.__version__}, "
        f"transformers {transformers.__version__}, Python {platform.python_version()}; "
        f"model `{args.model}`; musegen backend `{args.backend}`; load average "
        f"{os.getloadavg()[0]:.1f} at the end; torch threads: {args.threads or 'default'}; {args.runs} runs after "
        f"one warm-up; `python -m benchmarks.generate --model {args.model} --device {args.device}"
        + (f" --threads {args.threads}" if args.threads else "") + "`.", "",
        "Stock `generate()` is timed on two requests: the same 8 bars x 4 (each row until its "
        "8 bars are complete, by a `StoppingCriteria`; the batch lasts as long as its longest "
        "row, as ours does: its steps column), and a fixed number of new tokens per row, the median our takes "
        "used (a shortcut only possible with our takes' lengths known in advance).", "",
        "| case | new tokens per take | longest take | musegen median s | p95 s | tokens/s "
        "| first bar s | peak RSS MB | stock, 8 bars: median s | p95 s | steps | speed-up "
        "| stock, fixed length: median s | p95 s | tokens/s | peak RSS MB | speed-up "
        "| musegen torch path: median s | speed-up vs stock, 8 bars |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['tokens_per_take']} | {r['ours_longest']:.0f} | "
            f"{r['ours_median_s']:.3f} | {r['ours_p95_s']:.3f} | "
            f"{r['ours_tok_s']:.0f} | {r['ours_first_bar_s']:.3f} | {r['ours_peak_rss_mb']:.0f} | "
            f"{r['bars_median_s']:.3f} | {r['bars_p95_s']:.3f} | {r['bars_steps']:.0f} | "
            f"**{r['bars_speedup']:.2f}x** | "
            f"{r['stock_median_s']:.3f} | {r['stock_p95_s']:.3f} | {r['stock_tok_s']:.0f} | "
            f"{r['stock_peak_rss_mb']:.0f} | {r['speedup']:.2f}x | {r['torch_median_s']:.3f} | "
            f"{r['torch_bars_speedup']:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        mode = "a" if args.out.exists() and args.device != "cpu" else "w"
        with open(args.out, mode) as f:
            f.write(text)
        (args.out.with_suffix(".json")).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
