"""Generation from the command line: continue, regenerate, blend, morph, styles, map, render.

Every take is written atomically as `<out>/<name>-<op>-<n>.mid` with a JSON sidecar; `n` counts
on from the takes already in `<out>`, so nothing there is ever overwritten.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path


def _common(p: argparse.ArgumentParser, *, variations: bool = True) -> None:
    p.add_argument("--out", type=Path, default=Path("takes"), help="folder for the takes")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for decoding (default: all cores, at most 4; 1 on a busy machine)")
    if variations:
        p.add_argument("--variations", type=int, default=4)
    p.add_argument("--seed", type=int, default=None, help="same seed + inputs = same takes")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--style-strength", type=float, default=None,
                   help="0 = no style, 1 = as trained, >1 = exaggerated")
    p.add_argument("--key", default=None, help="lock pitches to a key, e.g. 'D major', 'Em'")
    p.add_argument("--pitch-range", default=None, help="LOW-HIGH MIDI pitches, e.g. 55-84")
    p.add_argument("--density", type=float, default=None, help="target notes per bar")
    p.add_argument("--max-leap", type=int, default=None,
                   help="largest step in semitones between a track's consecutive notes")
    p.add_argument("--max-copy", type=int, default=None,
                   help="re-sample takes that copy this many consecutive notes from training data")


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("continue", help="continue a MIDI file by N bars")
    c.add_argument("input", type=Path)
    c.add_argument("--bars", type=int, default=8)
    c.add_argument("--style", default=None, help="style name (see `musegen styles`)")
    _common(c)
    c.set_defaults(func=run_continue)

    r = sub.add_parser("regenerate", help="regenerate a bar range of a MIDI file")
    r.add_argument("input", type=Path)
    r.add_argument("--bars", required=True, help="1-based inclusive range, e.g. 5-6")
    r.add_argument("--style", default=None)
    _common(r)
    r.set_defaults(func=run_regenerate)

    b = sub.add_parser("blend", help="generate under a weighted mix of styles")
    b.add_argument("input", type=Path, nargs="?", default=None,
                   help="MIDI file to continue (omit to start from nothing)")
    b.add_argument("--style", action="append", required=True, metavar="NAME=WEIGHT",
                   help="repeatable, e.g. --style bach-chorale=0.7 --style irish-dance=0.3")
    b.add_argument("--bars", type=int, default=8)
    b.add_argument("--slerp", action="store_true", help="spherical interpolation (two styles)")
    _common(b)
    b.set_defaults(func=run_blend)

    m = sub.add_parser("morph", help="a sequence of clips walking from one style to another")
    m.add_argument("input", type=Path, nargs="?", default=None)
    m.add_argument("--from", dest="from_style", required=True)
    m.add_argument("--to", dest="to_style", required=True)
    m.add_argument("--steps", type=int, default=5)
    m.add_argument("--bars", type=int, default=4)
    _common(m, variations=False)
    m.set_defaults(func=run_morph)

    s = sub.add_parser("styles", help="list the model's styles")
    s.add_argument("--model", default=None)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=run_styles)

    mp = sub.add_parser("map", help="draw the style space as a labelled PNG")
    mp.add_argument("output", type=Path)
    mp.add_argument("--model", default=None)
    mp.set_defaults(func=run_map)

    rd = sub.add_parser("render", help="piano-roll PNG and, with fluidsynth, a WAV of a take")
    rd.add_argument("input", type=Path)
    rd.add_argument("--png", type=Path, default=None)
    rd.add_argument("--wav", type=Path, default=None)
    rd.add_argument("--soundfont", type=Path, default=None,
                    help="General MIDI SoundFont (default: the system's FluidR3_GM.sf2)")
    rd.set_defaults(func=run_render)


def _kw(args: argparse.Namespace) -> dict:
    from musegen.errors import ParameterError

    kw: dict = {}
    for name in ("seed", "temperature", "top_p", "style_strength", "key", "density", "max_copy",
                 "max_leap"):
        val = getattr(args, name, None)
        if val is not None:
            kw[name] = val
    if getattr(args, "pitch_range", None):
        try:
            lo, hi = (int(x) for x in args.pitch_range.split("-"))
        except ValueError:
            raise ParameterError(f"--pitch-range must look like 55-84, got {args.pitch_range!r}") from None
        kw["pitch_range"] = (lo, hi)
    return kw


def _studio(args: argparse.Namespace):  # noqa: ANN202
    from musegen.studio import Studio

    return Studio(model=args.model, device=getattr(args, "device", None),
                  threads=getattr(args, "threads", None))


def _load(path: Path):  # noqa: ANN202
    """A take musegen wrote (MIDI + sidecar: building on it inherits its style and parameters),
    or any MIDI file."""
    import sys

    from musegen.clip import Clip
    from musegen.errors import ParameterError
    from musegen.studio import Take

    if Path(path).with_suffix(".json").is_file():
        try:
            return Take.load(path)
        except ParameterError as e:
            print(f"note: {e}; using the MIDI file alone", file=sys.stderr)
    return Clip.load(path)


def _write(takes: list, args: argparse.Namespace, name: str, op: str) -> list[Path]:
    """Write the takes into `--out` under free numbered names, print where; the MIDI paths."""
    from rich.console import Console
    from rich.table import Table

    from musegen.session.files import write_numbered_takes

    paths = write_numbered_takes(takes, args.out, f"{name}-{op}")
    table = Table(title=f"{len(takes)} takes -> {args.out}")
    table.add_column("file", overflow="fold")
    for col in ("bars", "notes", "seed", "longest copied run", "from piece"):
        table.add_column(col)
    for path, t in zip(paths, takes):
        nov = t.novelty
        table.add_row(path.name, str(t.clip.n_bars), str(t.clip.n_notes), str(t.seed),
                      str(nov.longest_run) if nov else "-", (nov.piece or "-") if nov else "-")
    console = Console()
    console.print(table)
    console.print(written_line(paths, args.out), soft_wrap=True, highlight=False)
    for line in take_warnings(takes):
        console.print(line, soft_wrap=True, highlight=False, style="yellow")
    return paths


WARNING_TEXT = {
    "drums_untrained": "the model was trained without drums: drum tracks come back as toms, ride or "
                       "cowbell (mute them, or leave the drum track out of the input)",
    "copies_more_than_max_copy": "still copies more than --max-copy notes from a training piece "
                                 "after every re-draw",
    "near_duplicate_of_earlier": "nearly repeats an earlier take of the same bars",
}


def take_warnings(takes: list) -> list[str]:
    """One line per kind of warning the takes carry, naming how many takes it concerns."""
    seen: dict[str, int] = {}
    for t in takes:
        for w in t.params.get("warnings", []):
            seen[w] = seen.get(w, 0) + 1
    return [f"warning ({n} of {len(takes)} takes): {WARNING_TEXT.get(w, w)}" for w, n in seen.items()]


def written_line(paths: list[Path], out: Path) -> str:
    """`wrote a-3.mid, a-4.mid (+ .json sidecars) in DIR`, saying when earlier takes were kept."""
    kept = "" if not paths or paths[0].stem.endswith("-1") else \
        " (numbered on: the takes already there are kept)"
    return f"wrote {', '.join(p.name for p in paths)} (+ .json sidecars) in {out}{kept}"


def run_continue(args: argparse.Namespace) -> int:
    clip = _load(args.input)
    takes = _studio(args).continue_(clip, bars=args.bars, variations=args.variations,
                                    style=args.style, **_kw(args))
    _write(takes, args, args.input.stem, "continue")
    return 0


def run_regenerate(args: argparse.Namespace) -> int:
    from musegen.errors import ParameterError

    try:
        a, _, b = args.bars.partition("-")
        bars = (int(a), int(b or a))
    except ValueError:
        raise ParameterError(f"--bars must look like 5-6 (1-based, inclusive), got {args.bars!r}") from None
    clip = _load(args.input)
    takes = _studio(args).regenerate(clip, bars=bars, variations=args.variations,
                                     style=args.style, **_kw(args))
    _write(takes, args, args.input.stem, "regenerate")
    return 0


def parse_style_weights(items: list[str]) -> dict[str, float]:
    from musegen.errors import ParameterError

    out = {}
    for item in items:
        name, sep, w = item.partition("=")
        try:
            out[name] = float(w) if sep else 1.0
        except ValueError:
            raise ParameterError(f"--style {item!r}: the weight must be a number") from None
    return out


def run_blend(args: argparse.Namespace) -> int:
    clip = _load(args.input) if args.input else None
    takes = _studio(args).blend(clip, styles=parse_style_weights(args.style), bars=args.bars,
                                variations=args.variations, slerp=args.slerp, **_kw(args))
    _write(takes, args, args.input.stem if args.input else "blend", "blend")
    return 0


def run_morph(args: argparse.Namespace) -> int:
    clip = _load(args.input) if args.input else None
    takes = _studio(args).morph(clip, from_style=args.from_style, to_style=args.to_style,
                                steps=args.steps, bars=args.bars, **_kw(args))
    _write(takes, args, args.input.stem if args.input else "morph", "morph")
    return 0


def run_styles(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from musegen.studio import Studio

    studio = Studio(model=args.model)
    if args.json:
        print(json.dumps([{"name": s.name, "description": s.description, "pieces": s.pieces}
                          for s in studio.styles], indent=1))
        return 0
    table = Table(title=f"styles of {studio.model_id}")
    for col in ("#", "name", "pieces", "description"):
        table.add_column(col)
    for s in studio.styles:
        table.add_row(str(s.index), s.name, str(s.pieces), s.description)
    Console().print(table)
    return 0


def run_map(args: argparse.Namespace) -> int:
    from musegen.studio import Studio

    path = Studio(model=args.model).style_map(args.output)
    print(f"wrote {path}")
    return 0


def run_render(args: argparse.Namespace) -> int:
    from musegen.errors import ParameterError
    from musegen.plots import piano_roll

    clip = _load(args.input)
    if not args.png and not args.wav:
        raise ParameterError("render: give --png OUT.png and/or --wav OUT.wav")
    if args.png:
        print(f"wrote {piano_roll(clip, args.png)}")
    if args.wav:
        exe = shutil.which("fluidsynth")
        sf2 = args.soundfont or next((p for p in (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
                                                   Path("/usr/share/soundfonts/FluidR3_GM.sf2"))
                                      if p.exists()), None)
        if not exe or not sf2 or not Path(sf2).exists():
            raise ParameterError(
                "render --wav needs fluidsynth and a General MIDI SoundFont: install the "
                "packages `fluidsynth fluid-soundfont-gm` (Debian/Ubuntu) or pass --soundfont")
        args.wav.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([exe, "-ni", "-q", "-F", str(args.wav), "-r", "44100", str(sf2),
                        str(args.input)], check=True, capture_output=True)
        print(f"wrote {args.wav}")
    return 0
