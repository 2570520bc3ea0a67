"""Generation from the command line: continue, regenerate, blend, morph, arrange, styles, map,
render.

Every take is written atomically as `<out>/<name>-<op>-<n>.mid` with a JSON sidecar; `n` counts
on from the takes already in `<out>`, so nothing there is ever overwritten.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bridges.commands._params import add_params, request_kw
from musegen.params import default

# what the library uses when an option is not given (musegen/params.py); the help says these,
# and tests/test_cli_ux.py checks them against the Studio
DEFAULT_TEMPERATURE = default("continue", "temperature")
DEFAULT_TOP_P = default("continue", "top_p")


def _common(p: argparse.ArgumentParser, op: str, *, has_input: bool = True) -> None:
    """Where takes go and what runs them, then every request parameter of `op` (its flags come
    from the parameter table, see bridges/commands/_params.py)."""
    p.add_argument("--out", type=Path, default=Path("takes"), help="folder for the takes")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--device", default=None,
                   help="auto, cpu, cuda, cuda:N or mps (default: auto = cuda, then mps, then cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for decoding (default: all cores, at most 4; 1 on a busy machine)")
    add_params(p, op, has_input=has_input)


_NO_STYLE = " (default: none, the model's unstyled voice)"


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("continue", help="continue a MIDI file by N bars")
    c.add_argument("input", type=Path, help="MIDI file to continue, e.g. musegen/data/examples/folk.mid")
    c.add_argument("--style", default=None, help="style name (see `musegen styles`)" + _NO_STYLE)
    _common(c, "continue")
    c.set_defaults(func=run_continue)

    r = sub.add_parser("regenerate", help="regenerate a bar range of a MIDI file")
    r.add_argument("input", type=Path, help="MIDI file whose bars are regenerated")
    r.add_argument("--style", default=None, help="style name (see `musegen styles`)" + _NO_STYLE)
    _common(r, "regenerate")
    r.set_defaults(func=run_regenerate)

    a = sub.add_parser("arrange", help="add voices to a MIDI file (harmonize a melody, add a bass, "
                                       "fill a missing part); its own notes stay exactly as they are")
    a.add_argument("input", type=Path, help="MIDI file whose tracks are kept, e.g. a melody")
    a.add_argument("--style", default=None, help="style name, e.g. bach-chorale (see `musegen styles`)"
                   + _NO_STYLE)
    _common(a, "arrange")
    a.set_defaults(func=run_arrange)

    b = sub.add_parser("blend", help="generate under a weighted mix of styles")
    b.add_argument("input", type=Path, nargs="?", default=None,
                   help="MIDI file to continue (omit to start from nothing)")
    b.add_argument("--style", action="append", required=True, metavar="NAME=WEIGHT",
                   help="repeatable, e.g. --style bach-chorale=0.7 --style irish-dance=0.3")
    _common(b, "blend", has_input=False)
    b.set_defaults(func=run_blend)

    m = sub.add_parser("morph", help="a sequence of clips walking from one style to another")
    m.add_argument("input", type=Path, nargs="?", default=None,
                   help="MIDI file every clip continues (omit to start from nothing)")
    _common(m, "morph", has_input=False)
    m.set_defaults(func=run_morph)

    s = sub.add_parser("styles", help="list the model's styles")
    s.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=run_styles)

    mp = sub.add_parser("map", help="draw the style space as a labelled PNG")
    mp.add_argument("output", type=Path, help="PNG file to write, e.g. styles.png")
    mp.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    mp.set_defaults(func=run_map)

    rd = sub.add_parser("render", help="piano-roll PNG and, with fluidsynth, a WAV of a take")
    rd.add_argument("input", type=Path, help="MIDI file (a take or any other)")
    rd.add_argument("--png", type=Path, default=None, help="write a piano roll here (default: none)")
    rd.add_argument("--wav", type=Path, default=None,
                    help="write audio here through fluidsynth (default: none)")
    rd.add_argument("--soundfont", type=Path, default=None,
                    help="General MIDI SoundFont (default: the system's FluidR3_GM.sf2)")
    rd.set_defaults(func=run_render)


def _studio(args: argparse.Namespace):  # noqa: ANN202
    from musegen.errors import ParameterError
    from musegen.studio import Studio

    threads = getattr(args, "threads", None)
    if threads is not None and not 1 <= threads <= 256:
        raise ParameterError(f"--threads must be in 1..256, got {threads}")
    return Studio(model=args.model, device=getattr(args, "device", None), threads=threads)


def check_out_dir(out: Path) -> None:
    """Refuse an --out that cannot become a folder (it, or a folder above it, is a file)
    before any model is loaded or any take generated."""
    from musegen.errors import ParameterError

    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == out else f"lies under {str(p)!r}, which is a file"
                raise ParameterError(f"--out {str(out)!r} {what}, not a folder")
            return


@contextlib.contextmanager
def progress_kw(label: str, units: int, unit: str = "bars") -> Iterator[dict]:
    """The `on_progress` keyword for one Studio call, shown on stderr as `units` done (e.g.
    bars x variations): a bar in a terminal, plain lines otherwise (bridges.commands._ui)."""
    from rich.console import Console

    from bridges.commands._ui import progress

    units = max(1, units)
    last = [-1]

    with progress(Console(stderr=True), label, total=units) as rep:

        def report(done: int) -> None:
            if done != last[0]:  # the sampler repeats a fraction until its batch is done
                last[0] = done
                rep.update(done, info=unit)

        yield {"on_progress": lambda f: report(min(units, max(0, round(f * units))))}
        report(units)


def _load(path: Path):  # noqa: ANN202
    """A take musegen wrote (MIDI + sidecar: building on it inherits its style and parameters),
    or any MIDI file."""
    import sys

    from musegen.clip import Clip
    from musegen.errors import ParameterError
    from musegen.studio import Take

    if Path(path).is_file() and Path(path).with_suffix(".json").is_file():  # '.' has no suffix to swap
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
    check_out_dir(args.out)
    kw = request_kw(args, "continue")
    clip = _load(args.input)
    studio = _studio(args)
    with progress_kw("continue", kw["bars"] * kw["variations"]) as pkw:
        takes = studio.continue_(clip, style=args.style, **kw, **pkw)
    _write(takes, args, args.input.stem, "continue")
    return 0


def run_regenerate(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    kw = request_kw(args, "regenerate")
    first, last = kw["bars"]
    clip = _load(args.input)
    studio = _studio(args)
    with progress_kw("regenerate", max(1, last - first + 1) * kw["variations"]) as pkw:
        takes = studio.regenerate(clip, style=args.style, **kw, **pkw)
    _write(takes, args, args.input.stem, "regenerate")
    return 0


def run_arrange(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    kw = request_kw(args, "arrange")
    clip = _load(args.input)
    studio = _studio(args)
    from musegen.take import Take

    n_bars = (clip.clip if isinstance(clip, Take) else clip).n_bars
    first, last = kw.get("bars", (1, max(1, n_bars)))
    with progress_kw("arrange", max(1, last - first + 1) * kw["variations"]) as pkw:
        takes = studio.arrange(clip, style=args.style, **kw, **pkw)
    _write(takes, args, args.input.stem, "arrange")
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
    check_out_dir(args.out)
    styles = parse_style_weights(args.style)
    kw = request_kw(args, "blend")
    clip = _load(args.input) if args.input else None
    studio = _studio(args)
    with progress_kw("blend", kw["bars"] * kw["variations"]) as pkw:
        takes = studio.blend(clip, styles=styles, **kw, **pkw)
    _write(takes, args, args.input.stem if args.input else "blend", "blend")
    return 0


def run_morph(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    kw = request_kw(args, "morph")
    clip = _load(args.input) if args.input else None
    studio = _studio(args)
    with progress_kw("morph", kw["bars"] * max(1, kw["steps"])) as pkw:
        takes = studio.morph(clip, **kw, **pkw)
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
    from musegen.clip import Clip
    from musegen.errors import ParameterError
    from musegen.plots import piano_roll

    clip = Clip.load(args.input)  # the MIDI file as it is (a take's sidecar plays no part here)
    if not args.png and not args.wav:
        raise ParameterError("render: give --png OUT.png and/or --wav OUT.wav")
    exe = sf2 = None
    if args.wav:  # everything the WAV needs is checked before anything is written
        exe, sf2 = _synth_tools(args.soundfont)
    if args.png:
        print(f"wrote {piano_roll(clip, args.png)}")
    if args.wav:
        _render_wav(exe, sf2, args.input, args.wav)
        print(f"wrote {args.wav}")
    return 0


_SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/soundfonts/FluidR3_GM.sf2"))


def _synth_tools(soundfont: Path | None) -> tuple[str, Path]:
    """The fluidsynth program and the SoundFont a WAV is rendered with, or ParameterError
    saying what to install."""
    from musegen.errors import ParameterError

    exe = shutil.which("fluidsynth")
    if soundfont is not None and not soundfont.is_file():
        raise ParameterError(f"--soundfont {str(soundfont)!r}: no such file")
    sf2 = soundfont or next((p for p in _SOUNDFONTS if p.exists()), None)
    if not exe:
        raise ParameterError("render --wav needs fluidsynth: install the package `fluidsynth` "
                             "(Debian/Ubuntu, Homebrew)")
    if not sf2:
        raise ParameterError("render --wav needs a General MIDI SoundFont: install the package "
                             "`fluid-soundfont-gm` (Debian/Ubuntu) or pass --soundfont FILE.sf2")
    return exe, sf2


def _render_wav(exe: str, sf2: Path, midi: Path, wav: Path) -> None:
    """`midi` played by fluidsynth into `wav` (ParameterError with fluidsynth's last line if it fails)."""
    from musegen.errors import ParameterError

    wav.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([exe, "-ni", "-q", "-F", str(wav), "-r", "44100", str(sf2), str(midi)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        said = (res.stderr or res.stdout).strip().splitlines()
        raise ParameterError(f"fluidsynth could not render {str(midi)!r} with {str(sf2)!r}"
                             + (f": {said[-1]}" if said else f" (exit {res.returncode})"))
