"""ABC collections → one MIDI file per tune.

An ABC file holds many tunes, each opened by an ``X:`` (reference number) line and titled
by its first ``T:`` line. :func:`read_abc_tunes` reads those headers from the text itself
(titles feed the grouping of tune variants). :func:`convert_abc_file` writes
``<stem><X>.mid`` for every tune into a folder of its own, with ``abc2midi`` when it is on
the PATH (hundreds of times faster) and with music21 otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from musegen.atomic import write_text

_X_LINE = re.compile(r"^X:\s*(\S+)")
_T_LINE = re.compile(r"^T:\s*(.*?)\s*$")
ABC2MIDI_ARGS = ("-quiet", "-silent", "-NGUI")  # -NGUI: no generated guitar-chord backing
DONE_MARKER = ".converted"


@dataclass(frozen=True)
class AbcTune:
    """The header of one tune in an ABC file: reference number, title, and its line."""

    x: int
    title: str | None
    line: int


def _decode_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _from_dos(line: str) -> str:
    try:
        return line.encode("latin-1").decode("cp437")
    except UnicodeEncodeError:
        return line


def read_abc_text(path: Path) -> str:
    """The text of an ABC file: each line UTF-8 where it decodes, else Latin-1.

    Some Essen files are DOS text (code page 437) once taken for Latin-1 and re-encoded;
    C1 control characters (0x81 = ü, 0x94 = ö) give them away, and then every line of the
    file is read back as code page 437 (so 0xE1 becomes ß, not á).
    """
    lines = [_decode_line(raw) for raw in Path(path).read_bytes().splitlines()]
    if any("\x80" <= c <= "\x9f" for line in lines for c in line):
        lines = [_from_dos(line) for line in lines]
    return "\n".join(lines)


def parse_abc_headers(text: str) -> tuple[list[AbcTune], int]:
    """Tunes of an ABC text in file order, and how many had an unusable ``X:`` number.

    A tune whose ``X:`` is not a whole number, or repeats an earlier tune's number, is left
    out (abc2midi names files by that number, so the second would overwrite the first).
    """
    tunes: list[AbcTune] = []
    seen: set[int] = set()
    bad = 0
    current: dict | None = None

    def close() -> None:
        if current is not None:
            tunes.append(AbcTune(current["x"], current["title"], current["line"]))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        match = _X_LINE.match(line)
        if match:
            close()
            current = None
            try:
                x = int(match.group(1))
            except ValueError:
                bad += 1
                continue
            if x in seen:
                bad += 1
                continue
            seen.add(x)
            current = {"x": x, "title": None, "line": lineno}
            continue
        if current is not None and current["title"] is None:
            t = _T_LINE.match(line)
            if t and t.group(1):
                current["title"] = t.group(1)
    close()
    return tunes, bad


def read_abc_tunes(path: Path) -> tuple[list[AbcTune], int]:
    """:func:`parse_abc_headers` of the file at ``path``."""
    return parse_abc_headers(read_abc_text(path))


def midi_name(stem: str, x: int) -> str:
    """The file name abc2midi gives tune ``x`` of ``<stem>.abc``."""
    return f"{stem}{x}.mid"


def abc2midi_path() -> str | None:
    """The abc2midi executable, or None when it is not installed."""
    return shutil.which("abc2midi")


def convert_abc_file(src: Path, work_dir: Path, *, use_abc2midi: bool = True,
                     timeout_s: float = 300.0) -> None:
    """Write ``<stem><X>.mid`` for each tune of ``src`` into ``work_dir``.

    The ABC file is copied into ``work_dir`` first (its source may be read-only
    site-packages). A ``.converted`` marker is written last, so a folder without it is
    converted again from scratch; call :func:`is_converted` to skip finished files.
    Failed tunes simply have no MIDI file; the caller counts them.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    local = work_dir / src.name
    shutil.copyfile(src, local)
    exe = abc2midi_path() if use_abc2midi else None
    if exe:
        try:
            subprocess.run([exe, local.name, *ABC2MIDI_ARGS], cwd=work_dir,
                           timeout=timeout_s, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            pass  # the tunes written so far are kept; the others count as skipped
        method = "abc2midi"
    else:
        _convert_with_music21(local, work_dir)
        method = "music21"
    write_text(work_dir / DONE_MARKER, method + "\n")


def is_converted(work_dir: Path) -> bool:
    """Whether :func:`convert_abc_file` finished in ``work_dir``."""
    return (work_dir / DONE_MARKER).exists()


def _convert_with_music21(local: Path, work_dir: Path) -> None:
    """Fallback: parse the whole ABC opus with music21 and write each tune with our writer."""
    import warnings

    import music21

    from musegen.corpus.m21midi import write_score_midi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = music21.converter.parse(local, format="abc", forceSource=True,
                                             storePickle=False)
        except Exception:  # noqa: BLE001 - a failed file leaves its tunes without MIDI
            return
        scores = list(parsed.scores) if hasattr(parsed, "scores") else [parsed]
        for index, score in enumerate(scores, start=1):
            number = getattr(score.metadata, "number", None) if score.metadata else None
            try:
                x = int(number) if number is not None else index
            except (TypeError, ValueError):
                x = index
            try:
                write_score_midi(score, work_dir / midi_name(local.stem, x))
            except Exception:  # noqa: BLE001
                continue
