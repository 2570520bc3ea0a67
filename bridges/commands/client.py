"""`musegen client OP [KEY VALUE]...`: one request to a running `musegen serve`, for host
scripts that can start a program but cannot speak OSC (REAPER's stock Lua, via
`reaper.ExecProcess`). The host writes its clip as a small text file (`--in`), the client
streams it to the server, sends the request, and writes every take back as text (`--out`), with
each note as bar number + beats into the bar, so the host can place it on its own bars and
tempo map without reading MIDI. Formats: `docs/daw.md`, *The exchange files*.

KEY VALUE pairs go to the server as they are (numbers as numbers): the server checks them, so
every address it has, now or later (`arrange`), works without a change here.
"""

from __future__ import annotations

import argparse
import bisect
import re
import sys
import time
from pathlib import Path

NOTES_HEADER = "musegen-notes 1"
RESULT_HEADER = "musegen-result 1"
DECISIONS = ("accept", "reject", "undo", "status", "styles", "cancel")
# operations whose takes hold only new bars, after the input's last bar (the others: the whole clip)
AFTER_INPUT = ("continue", "blend", "morph")
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("client", help="send one request to a running `musegen serve` (for DAW scripts)",
                       description="Send /musegen/OP to a running server and wait for its answer. "
                       "With --in, the clip in that notes file is streamed first and the request "
                       "works from it. With --out, the takes are written there as text "
                       "(docs/daw.md). Exit 1 with one line on stderr if the server refuses.")
    p.add_argument("op", help="the address after /musegen/: continue, regenerate, blend, morph, "
                   "lyrics, arrange, accept, edit, undo, status ...")
    p.add_argument("params", nargs="*", metavar="KEY VALUE",
                   help="parameters, sent as they are (docs/osc.md): bars 8 variations 4")
    p.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9000, help="server's --osc-port (default 9000)")
    p.add_argument("--reply-port", type=int, default=0,
                   help="local port to send from and listen on; set it to the server's --reply-port "
                   "if it has one (default 0: any free port)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer")
    p.add_argument("--in", dest="notes_in", type=Path, default=None, metavar="NOTES",
                   help="notes file of the clip to work from (default: none, e.g. for accept)")
    p.add_argument("--out", type=Path, default=None, metavar="RESULT",
                   help="write the answer here, atomically (default: none, only a summary on stdout)")
    p.add_argument("--session-dir", type=Path, default=None, metavar="DIR",
                   help="edit only: the server's session folder, where the edited clip is saved "
                   "for the server to import (default: none; edit needs it)")
    p.set_defaults(func=run_client)


def wire_value(text: str) -> int | float | str:
    """A command-line word as the OSC value it stands for: `8` -> 8, `0.9` -> 0.9, else text."""
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def read_notes(path: Path) -> tuple[list[dict], float, str]:
    """A notes file -> (notes, tempo, "N/D"). One clear error naming the file and line."""
    from musegen.errors import ParameterError

    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != NOTES_HEADER:
        raise ParameterError(f"{path}: not a notes file (the first line must be {NOTES_HEADER!r})")
    notes, tempo, ts = [], 120.0, "4/4"
    for i, line in enumerate(lines[1:], 2):
        words = line.split()
        try:
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "tempo":
                tempo = float(words[1])
            elif words[0] == "time_signature":
                ts = words[1]
            elif words[0] == "note":
                pitch, vel, start, dur, track = words[1:6]
                notes.append({"pitch": int(pitch), "velocity": int(vel), "start_beats": float(start),
                              "duration_beats": float(dur), "track": int(track)})
            else:
                raise ValueError(f"unknown line kind {words[0]!r}")
        except (ValueError, IndexError) as e:
            raise ParameterError(f"{path}:{i}: can't read {line.strip()!r} ({e})") from None
    return notes, tempo, ts


def input_bars(notes: list[dict], tempo: float, ts: str) -> int:
    """How many bars the server counts in the streamed clip (the same `build_clip` it uses)."""
    from bridges.osc.notes import build_clip

    num, den = (int(x) for x in ts.split("/"))
    return build_clip(notes, {"tempo": tempo, "time_signature": (num, den)}).n_bars


def take_lines(index: int, take_id: str, path: str) -> list[str]:
    """A take's `take` line and one `note` line per note: bar (0-based, in the take's own bars)
    and beats into that bar, so a host can place it on its own bar lines."""
    from musegen.clip import PPQ, Clip

    clip = Clip.load(path)
    ts = clip.time_signatures[0]
    out = [f"take {index} {take_id} {clip.n_bars} {ts.numerator}/{ts.denominator} "
           f"{clip.tempos[0].qpm:g} {path}"]
    bars = clip.bar_starts
    notes = [(ti, n) for ti, t in enumerate(clip.tracks) for n in t.notes]
    for ti, n in sorted(notes, key=lambda x: (x[1].start_tick, x[0], x[1].pitch)):
        bar = max(0, bisect.bisect_right(bars, n.start_tick) - 1)
        offset = (n.start_tick - bars[bar]) / PPQ
        syl = f" {n.lyric.replace(' ', '_')}" if n.lyric else ""
        out.append(f"note {index} {bar} {offset!r} {n.duration_ticks / PPQ!r} {n.pitch} "
                   f"{n.velocity} {ti}{syl}")
    return out


def run_client(args: argparse.Namespace) -> int:
    from bridges.osc.client import OscClient, OscRequestError
    from musegen.errors import ParameterError

    if len(args.params) % 2:
        raise ParameterError(f"parameters come in KEY VALUE pairs; got {len(args.params)} words")
    params = [wire_value(w) if i % 2 else w for i, w in enumerate(args.params)]
    head = [RESULT_HEADER, f"op {args.op}"]
    t0 = time.monotonic()
    try:
        with OscClient(args.host, args.port, local_port=args.reply_port, timeout_s=args.timeout) as c:
            body = _run(c, args, params, head)
    except OscRequestError as e:
        if args.out:
            _write(args.out, head + [f"error {e}"])
        raise ParameterError(f"musegen serve: {e}") from None
    if args.out:
        _write(args.out, head + body + ["ok"])
    print(f"musegen client: {args.op} done in {time.monotonic() - t0:.1f} s"
          + (f", {sum(ln.startswith('take ') for ln in body)} takes" if body else ""))
    return 0


def _run(c: object, args: argparse.Namespace, params: list, head: list[str]) -> list[str]:
    from bridges.osc.client import OscClient
    from musegen.errors import ParameterError

    assert isinstance(c, OscClient)
    body: list[str] = []
    if args.op == "edit":
        return _edit(c, args, params, head)
    if args.notes_in is not None and args.op not in DECISIONS:
        notes, tempo, ts = read_notes(args.notes_in)
        if not notes:
            raise ParameterError(f"{args.notes_in}: the clip has no notes")
        source = c.stream_clip(notes, tempo=tempo, time_signature=ts)
        head += [f"source {source}", f"input_bars {input_bars(notes, tempo, ts)}"]
        params = ["take", source, *params]
    rid = c.new_id()
    head.append(f"request {rid}")
    reply = c.request(args.op, params, rid)
    takes = reply.of("/take")
    for _, index, take_id, path in (a[:4] for a in takes):
        body += take_lines(int(index), str(take_id), str(path))
    for a in reply.of("/lyrics/line"):
        body.append(f"line {a[1]} {a[2]} {str(a[4]).replace(chr(10), ' ')}")
    for a in reply.of("/undone"):
        body.append(f"undone {a[1]} {a[2]} {a[3]}")
    if takes:
        head.append(f"session {Path(str(takes[0][3])).parent.parent}")
    head.append(f"placement {'after_input' if args.op in AFTER_INPUT else 'at_input'}")
    body.append("done " + " ".join(str(a) for a in reply.done[1:]))
    return body


def _edit(c: object, args: argparse.Namespace, params: list, head: list[str]) -> list[str]:
    """`edit take T --in NOTES --session-dir DIR`: save the edited notes as a MIDI file in the
    session folder (always an allowed folder of the server) and import it as an edit of T."""
    from bridges.osc.client import OscClient
    from bridges.osc.notes import build_clip
    from musegen.errors import ParameterError

    assert isinstance(c, OscClient)
    kv = dict(zip(params[0::2], params[1::2]))
    if "take" not in kv or args.notes_in is None or args.session_dir is None:
        raise ParameterError("edit needs `take T`, --in NOTES (the edited clip) and --session-dir DIR")
    notes, tempo, ts = read_notes(args.notes_in)
    if not notes:
        raise ParameterError(f"{args.notes_in}: the edited clip has no notes")
    num, den = (int(x) for x in ts.split("/"))
    clip = build_clip(notes, {"tempo": tempo, "time_signature": (num, den), "name": f"{kv['take']} edited"})
    folder = args.session_dir / "daw-edits"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kv['take']}-edit-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.mid"
    clip.save(path)
    rid = c.new_id()
    head.append(f"request {rid}")
    reply = c.request("edit", ["take", str(kv["take"]), "path", str(path.resolve())], rid)
    new_id, new_path = reply.done[1], reply.done[2]
    return [*take_lines(0, str(new_id), str(new_path)), f"done {new_id} {new_path}"]


def _write(path: Path, lines: list[str]) -> None:
    from musegen.atomic import write_text

    try:
        write_text(path, "\n".join(lines) + "\n")
    except OSError as e:
        print(f"musegen client: error: can't write {path}: {e.strerror or e}", file=sys.stderr)
