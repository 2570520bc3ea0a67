"""`musegen session list/show/accept/reject/edit/undo/export/log/resolve`: a session's takes.

Listing and showing open the session read-only, so they work while `musegen serve` holds it;
deciding needs the session to itself (while a server runs, send /musegen/accept instead).
Both print every problem the session has (damaged journal lines, takes with missing or damaged
files) on stderr, every time, until it is dealt with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

FOLDER = "the session folder (a `--session` of serve, midi or repl)"
TAKE = "take id, e.g. t0003 (see `musegen session list`)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("session", help="list, decide on and export the takes of a session")
    ssub = p.add_subparsers(dest="session_command", metavar="ACTION", required=True)

    ls = ssub.add_parser("list", help="the takes, oldest first")
    ls.add_argument("folder", type=Path, help=FOLDER)
    ls.add_argument("--status", choices=("pending", "accepted", "rejected"), default=None,
                    help="only takes with this status (default: all)")
    ls.add_argument("--all", action="store_true", help="include undone edits")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)

    sh = ssub.add_parser("show", help="one take: its sidecar and its lineage")
    sh.add_argument("folder", type=Path, help=FOLDER)
    sh.add_argument("take", help=TAKE)
    sh.set_defaults(func=run_show)

    for name in ("accept", "reject"):
        d = ssub.add_parser(name, help=f"{name} a take")
        d.add_argument("folder", type=Path, help=FOLDER)
        d.add_argument("take", help=TAKE)
        d.set_defaults(func=run_decide, decision=name)

    ed = ssub.add_parser("edit", help="import your edited MIDI as a new take under TAKE")
    ed.add_argument("folder", type=Path, help=FOLDER)
    ed.add_argument("take", help="the take you edited, e.g. t0003")
    ed.add_argument("midi", type=Path, help="your edited MIDI file")
    ed.set_defaults(func=run_edit)

    un = ssub.add_parser("undo", help="undo the latest accept, reject or edit")
    un.add_argument("folder", type=Path, help=FOLDER)
    un.set_defaults(func=run_undo)

    ex = ssub.add_parser("export", help="copy a take (MIDI + sidecar) out of the session")
    ex.add_argument("folder", type=Path, help=FOLDER)
    ex.add_argument("take", help=TAKE)
    ex.add_argument("dest", type=Path, help="a .mid path or a folder")
    ex.set_defaults(func=run_export)

    lg = ssub.add_parser("log", help="print the journal (JSON lines)")
    lg.add_argument("folder", type=Path, help=FOLDER)
    lg.set_defaults(func=run_log)

    rs = ssub.add_parser("resolve", help="mark damaged journal lines as dealt with (after "
                         "checking the takes they name and deciding them again where needed)")
    rs.add_argument("folder", type=Path, help=FOLDER)
    rs.add_argument("line", type=int, nargs="+", help="journal line numbers `session list` names")
    rs.set_defaults(func=run_resolve)


def _open(folder: Path, readonly: bool):  # noqa: ANN202
    from musegen.session import Session

    return Session.open(folder, create=False, readonly=readonly)


def print_problems(s, folder: Path, prog: str, file: TextIO | None = None) -> None:  # noqa: ANN001
    """Each problem of session `s` as a WARNING line, and how to deal with them."""
    file = file or sys.stderr
    problems = s.problems()
    for p in problems:
        print(f"{prog}: WARNING: {p.message}", file=file, flush=True)
    lines = [str(p.line) for p in problems if p.line is not None]
    if lines:
        print(f"{prog}: check the takes named above (`musegen session show {folder} TAKE`), decide "
              f"them again where needed (`musegen session accept|reject {folder} TAKE`), then mark "
              f"the line(s) dealt with: musegen session resolve {folder} {' '.join(lines)}",
              file=file, flush=True)


def report_opening(s, prog: str, file: TextIO | None = None) -> None:  # noqa: ANN001
    """What opening a session (for `serve`, `repl`) repaired, and what is still wrong."""
    summary = s.recovery.summary()
    if summary:
        print(f"{prog}: recovered the session after a crash: {summary}", file=file or sys.stderr,
              flush=True)
    print_problems(s, s.folder, prog, file)


def run_list(args: argparse.Namespace) -> int:
    with _open(args.folder, readonly=True) as s:
        takes = s.takes(status=args.status, include_undone=args.all)
        doubt = s.in_doubt()
        print_problems(s, args.folder, "musegen session list")
    if args.json:
        print(json.dumps([{"take": t.id, "operation": t.operation, "parent": t.parent,
                           "status": t.status, "undone": t.undone, "bars": t.n_bars,
                           "notes": t.n_notes, "seed": t.seed, "request": t.request_id,
                           "path": str(t.midi_path), "damage": t.damage,
                           "in_doubt": doubt.get(t.id, [])} for t in takes], indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(takes)} takes in {args.folder}")
    for col in ("take", "operation", "parent", "status", "bars", "notes", "style", "seed"):
        table.add_column(col)
    for t in takes:
        styles = t.params.get("styles")
        style = ", ".join(f"{k}={v:g}" for k, v in styles.items()) if isinstance(styles, dict) else "-"
        status = t.status + (" (undone)" if t.undone else "")
        if t.id in doubt:
            status += f" (in doubt: line {', '.join(map(str, doubt[t.id]))})"
        if t.damage:  # "its MIDI file PATH is missing", "its sidecar PATH is unreadable (...)"
            what = "MIDI file" if t.damage.startswith("its MIDI") else "sidecar"
            status += f" - {what} {'MISSING' if t.damage.endswith(' is missing') else 'DAMAGED'}"
        table.add_row(t.id, t.operation, t.parent or "-", status, str(t.n_bars), str(t.n_notes),
                      style, "-" if t.seed is None else str(t.seed))
    Console().print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with _open(args.folder, readonly=True) as s:
        print_problems(s, args.folder, "musegen session show")
        side = s.sidecar(args.take)
        chain = s.lineage(args.take)
        rec = s.take(args.take)
        doubt = s.in_doubt().get(rec.id, [])
    print(json.dumps({"take": rec.id, "status": rec.status, "undone": rec.undone,
                      "in_doubt": doubt, "path": str(rec.midi_path),
                      "lineage": [f"{t.id} ({t.operation})" for t in chain], "sidecar": side},
                     indent=1, default=str))
    return 0


def run_decide(args: argparse.Namespace) -> int:
    with _open(args.folder, readonly=False) as s:
        rec = s.accept(args.take) if args.decision == "accept" else s.reject(args.take)
    print(f"{rec.id}: {rec.status}")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    with _open(args.folder, readonly=False) as s:
        rec = s.edit(args.take, args.midi)
    print(f"{rec.id}: your edit of {args.take} -> {rec.midi_path}")
    return 0


def run_undo(args: argparse.Namespace) -> int:
    with _open(args.folder, readonly=False) as s:
        entry, rec = s.undo()
    state = "hidden" if rec.undone else rec.status
    print(f"undid {entry['type']} of {rec.id} (now {state})")
    return 0


def run_export(args: argparse.Namespace) -> int:
    with _open(args.folder, readonly=True) as s:
        path = s.export(args.take, args.dest)
    print(f"wrote {path}")
    return 0


def run_log(args: argparse.Namespace) -> int:
    with _open(args.folder, readonly=True) as s:
        for e in s.entries():
            print(json.dumps(e, ensure_ascii=False))
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    with _open(args.folder, readonly=False) as s:
        for line in args.line:
            entry = s.resolve(line)
            print(f"journal line {line}: resolved (journal entry {entry['seq']})")
        print_problems(s, args.folder, "musegen session resolve")
    return 0
