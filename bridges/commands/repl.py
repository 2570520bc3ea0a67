"""`musegen repl`: a Python shell (stdlib `code.interact`) with a `studio` and a session ready.

Generated takes (`musegen.studio.Take`) print as one line each (their `__repr__`); session takes
(`musegen.session.TakeRecord`) are shown the same way by the shell's display hook, and lists of
either print one take per line, so `session.takes()` reads as bars, notes, style and novelty.
"""

from __future__ import annotations

import argparse
import code
import json
import sys
from pathlib import Path

DEFAULT_SESSION = Path("musegen-session")

BANNER = """musegen {version} REPL | model {model} | session {folder} ({n} takes{ro})
  studio    generate: studio.continue_(clip, bars=8, variations=4, style=..., seed=...),
            .regenerate(take, bars=(5, 6)), .blend(None, styles={{...}}), .morph(None, a, b),
            .arrange(melody, add="satb", style="bach-chorale")  (voices around your tracks)
  session   the take history: session.takes(), .accept(id), .reject(id), .lineage(id)
  load(p)   a MIDI file as a Clip       keep(takes, parent=None) -> store takes in the session
  styles    the style names             clip(take_id) -> a session take's Clip
Ctrl-D leaves (the session is closed cleanly)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("repl", help="a Python shell with a studio and a session ready",
                       description="Open an interactive Python shell with `studio` (the model, "
                       "loaded once) and `session` (a take history folder) in scope.")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--session", type=Path, default=DEFAULT_SESSION,
                   help=f"session folder, created when new (default ./{DEFAULT_SESSION})")
    p.add_argument("--readonly", action="store_true",
                   help="open the session read-only (works while `musegen serve` holds it)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    p.set_defaults(func=run_repl)


def describe_record(rec: object) -> str:
    """One line for a session take: id, operation, status, bars, notes, style, novelty, parent."""
    params = getattr(rec, "params", None) or {}
    styles = params.get("styles")
    if isinstance(styles, dict):
        style = "+".join(k if len(styles) == 1 else f"{k}={float(w):g}" for k, w in styles.items())
    else:
        style = "none" if styles is None else str(styles)
    nov = params.get("novelty")
    side = getattr(rec, "sidecar_path", None)
    if nov is None and side is not None:
        try:
            nov = json.loads(Path(side).read_text(encoding="utf-8")).get("novelty")
        except (OSError, ValueError):
            nov = None
    novelty = "n/a"
    if isinstance(nov, dict):
        run, piece = nov.get("longest_run", 0), nov.get("piece")
        novelty = f"{run} notes of {piece!r}" if piece else str(run)
    parent = getattr(rec, "parent", None)
    return (f"<{getattr(rec, 'id', '?')} {getattr(rec, 'operation', '?')} "
            f"{getattr(rec, 'status', '?')} {getattr(rec, 'n_bars', 0)} bars "
            f"{getattr(rec, 'n_notes', 0)} notes style={style} novelty={novelty}"
            + (f" parent={parent}" if parent else "") + ">")


def _is_record(obj: object) -> bool:
    from musegen.session import TakeRecord

    return isinstance(obj, TakeRecord)


def _is_take(obj: object) -> bool:
    from musegen.studio import Take

    return isinstance(obj, Take) or _is_record(obj)


def _line(obj: object) -> str:
    return describe_record(obj) if _is_record(obj) else repr(obj)


def _display(value: object) -> None:
    """sys.displayhook: takes (alone or in a list/tuple) one per line, else as usual."""
    if isinstance(value, (list, tuple)) and value and all(_is_take(v) for v in value):
        text = "[" + ",\n ".join(_line(v) for v in value) + "]"
    elif _is_record(value):
        text = describe_record(value)
    else:
        sys.__displayhook__(value)
        return
    import builtins

    builtins._ = value  # type: ignore[attr-defined]
    print(text)


def namespace(studio: object, session: object) -> dict:
    """What the shell starts with."""
    import musegen
    from musegen import Clip

    def load(path: str | Path) -> Clip:
        """A MIDI file as a Clip."""
        return Clip.load(path)

    def keep(takes: object, parent: str | None = None) -> list:
        """Store generated takes (one or a list) in the session; returns their session records."""
        items = takes if isinstance(takes, (list, tuple)) else [takes]
        return session.add_takes(list(items), parent=parent)  # type: ignore[attr-defined]

    def clip(take_id: str) -> Clip:
        """A session take's Clip (to continue from: `studio.continue_(clip('t0003'))`)."""
        return session.clip(take_id)  # type: ignore[attr-defined]

    return {"studio": studio, "session": session, "musegen": musegen, "Clip": Clip, "load": load,
            "keep": keep, "clip": clip, "styles": list(studio.style_names),  # type: ignore[attr-defined]
            "__name__": "__musegen_repl__"}


def run_repl(args: argparse.Namespace) -> int:
    import musegen
    from musegen.session import Session
    from musegen.studio import Studio

    studio = Studio(model=args.model, device=args.device)
    session = Session.open(args.session, readonly=args.readonly)
    from bridges.commands.session import report_opening

    report_opening(session, "musegen repl", sys.stderr)
    banner = BANNER.format(version=musegen.__version__, model=studio.model_id, folder=session.folder,
                           n=len(session.takes()), ro=", read-only" if args.readonly else "")
    if sys.stdin.isatty():
        try:
            import readline
            import rlcompleter  # noqa: F401  (registers the completer)

            readline.parse_and_bind("tab: complete")
        except ImportError:  # Windows without pyreadline
            pass
    old_hook = sys.displayhook
    sys.displayhook = _display
    try:
        code.interact(banner=banner, local=namespace(studio, session), exitmsg="")
    finally:
        sys.displayhook = old_hook
        session.close()
    return 0
