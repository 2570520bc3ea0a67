"""First streamed note: how long after `/musegen/ack` a host hears the first note (issue 17).

A real `musegen serve` (the shipped model, or --model) on loopback and a real UDP client: a
continue of the bundled folk tune, 4 bars x 4 variations, with `stream 2` (notes as their bars
are decoded) and with `stream 1` (each take's notes after it is saved), several seeds each.
Reported per mode: ack -> first `/musegen/note`, ack -> `/musegen/done`, notes received vs the
notes of the saved takes (every note must arrive).

    python -m benchmarks.stream_latency --runs 10 --out benchmarks/results/stream_latency.md
"""

from __future__ import annotations

import argparse
import platform
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
from pythonosc.osc_packet import OscPacket

from benchmarks._report import emit
from benchmarks.floor import cpu_name
from bridges.osc.client import encode


def one_request(server_addr: tuple[str, int], path: Path, rid: int, stream: int, seed: int,
                bars: int, variations: int, timeout: float = 120.0) -> dict:
    """Send one continue and time what comes back (monotonic clock, this process)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    t_send = time.monotonic()
    sock.sendto(encode("/musegen/continue", [rid, "path", str(path), "bars", bars,
                                             "variations", variations, "seed", seed, "stream", stream]), server_addr)
    ack = first = done = None
    notes, takes = 0, []
    deadline = t_send + timeout
    try:
        while done is None and time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65536)
            except TimeoutError:
                continue
            now = time.monotonic()
            for m in OscPacket(data).messages:
                addr, args = m.message.address, list(m.message.params)
                if not args or args[0] != rid:
                    continue
                if addr == "/musegen/ack" and ack is None:
                    ack = now
                elif addr == "/musegen/note":
                    notes += 1
                    first = first if first is not None else now
                elif addr == "/musegen/take":
                    takes.append(args[2])
                elif addr == "/musegen/error":
                    raise RuntimeError(f"request {rid} failed: {args}")
                elif addr == "/musegen/done":
                    done = now
    finally:
        sock.close()
    if ack is None or first is None or done is None:
        raise RuntimeError(f"request {rid}: no ack/note/done within {timeout} s")
    return {"ack_s": ack - t_send, "first_note_s": first - ack, "done_s": done - ack,
            "notes": notes, "takes": takes}


def run(model: str | None, runs: int, bars: int, variations: int, threads: int) -> dict:
    from bridges.osc.protocol import Limits
    from bridges.osc.server import OscServer
    from musegen.examples import example_path
    from musegen.session import Session
    from musegen.studio import Studio

    studio = Studio(model, device="cpu", threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "in"
        inbox.mkdir()
        path = inbox / "folk.mid"
        path.write_bytes(example_path("folk").read_bytes())
        session = Session.open(Path(tmp) / "session")
        server = OscServer(studio, session, port=0, limits=Limits(allowed_dirs=(inbox.resolve(),))).start()
        try:
            one_request(server.address, path, 999, 2, 999, bars, variations)  # warm-up
            out: dict[int, list[dict]] = {1: [], 2: []}
            rid = 1
            for seed in range(runs):
                for stream in (2, 1):  # interleaved: both modes see the same machine state
                    r = one_request(server.address, path, rid, stream, seed, bars, variations)
                    r["saved_notes"] = sum(session.clip(t).n_notes for t in r["takes"])
                    out[stream].append(r)
                    rid += 1
        finally:
            server.stop()
            session.close()
    return {"model": model or "default", "runs": runs, "bars": bars, "variations": variations,
            "threads": threads, "results": out}


def _row(name: str, rs: list[dict]) -> str:
    first = np.array([r["first_note_s"] for r in rs]) * 1000
    done = np.array([r["done_s"] for r in rs]) * 1000
    got, saved = sum(r["notes"] for r in rs), sum(r["saved_notes"] for r in rs)
    return (f"| {name} | {np.median(first):.0f} | {np.percentile(first, 95):.0f} | "
            f"{np.median(done):.0f} | {np.percentile(done, 95):.0f} | {got} / {saved} |")


def report(res: dict, note: str) -> str:
    import torch

    lines = [
        "# First streamed note over OSC (issue 17)",
        "",
        f"`python -m benchmarks.stream_latency --runs {res['runs']}`: a real `musegen serve` on loopback "
        f"(model `{res['model']}`, {res['threads']} torch thread(s)) and a real UDP client; continue "
        f"of the bundled folk tune, {res['bars']} bars x {res['variations']} variations, seeds "
        f"0..{res['runs'] - 1}, the two modes interleaved, after one warm-up request. Times from "
        "`/musegen/ack` in ms.",
        "",
        f"CPU: {cpu_name()} ({platform.machine()}); torch {torch.__version__}; "
        f"Python {platform.python_version()}. {note}",
        "",
        "| mode | first note median | p95 | done median | p95 | notes received / in the saved takes |",
        "|---|---:|---:|---:|---:|---:|",
        _row("`stream 2` (as decoded)", res["results"][2]),
        _row("`stream 1` (after each take is saved)", res["results"][1]),
        "",
        "Target (issue 17): first streamed note <= 100 ms after the ack for this request; every note "
        "of every take arrives.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--runs", type=int, default=10, help="seeds per mode (default 10)")
    ap.add_argument("--bars", type=int, default=4)
    ap.add_argument("--variations", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--note", default="", help="a line about the machine's state, for the report")
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown here")
    a = ap.parse_args()
    emit(report(run(a.model, a.runs, a.bars, a.variations, a.threads), a.note).splitlines(), a.out)


if __name__ == "__main__":
    main()
