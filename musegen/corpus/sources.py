"""Where the pieces come from: enumerate them and make sure each has a MIDI file.

:func:`enumerate_style` lists the pieces of a registered style (one per ABC tune, one per
music21 file) and :func:`enumerate_midi_dir` those of a user's folder of MIDI files. Each
:class:`Piece` knows its source, its title (for grouping variants) and where its MIDI file
is or will be. :func:`convert_m21_file` is the process-pool task that parses one score with
music21 and writes its MIDI file.
"""

from __future__ import annotations

import re
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path

from musegen.atomic import write_text
from musegen.corpus.abc import midi_name, read_abc_tunes
from musegen.corpus.styles import Style, corpus_root, style_files

MIDI_SUFFIXES = (".mid", ".midi", ".smf")
FAILED_SUFFIX = ".failed"


@dataclass(frozen=True)
class Piece:
    """One piece of the corpus before tokenization.

    ``id`` is unique and stable (``style/relative/path`` plus ``#X`` for ABC tunes).
    ``midi`` is the MIDI file to tokenize; ``source`` the file it came from (relative to the
    music21 corpus for bundled styles). ``skip`` is set when the piece is known to be
    unusable before conversion (e.g. a repeated ABC ``X:`` number).
    """

    id: str
    style: str
    family: str
    source: str
    title: str | None
    midi: Path
    skip: str | None = None


@dataclass(frozen=True)
class ConversionJob:
    """One unit of stage 1: an ABC file (many tunes) or a music21 score (one piece)."""

    kind: str  # "abc" or "music21"
    source: Path
    target: Path  # the work folder (abc) or the MIDI file (music21)
    cost: float  # for ordering heaviest first


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _strip_suffix(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel


def enumerate_style(style: Style, work_dir: Path, *, limit: int | None = None,
                    root: Path | None = None) -> tuple[list[Piece], list[ConversionJob]]:
    """The pieces of a registered ``style`` and the conversions that make their MIDI files.

    With ``limit``, only the first ``limit`` pieces (in sorted file and tune order) and the
    files they need. MIDI files live under ``work_dir``.
    """
    root = corpus_root() if root is None else root
    pieces: list[Piece] = []
    jobs: list[ConversionJob] = []
    for path in style_files(style, root):
        if limit is not None and len(pieces) >= limit:
            break
        rel = _rel(path, root)
        if style.kind == "abc":
            folder = work_dir / "abc" / style.name / _strip_suffix(rel)
            tunes, n_bad = read_abc_tunes(path)
            for tune in tunes:
                if limit is not None and len(pieces) >= limit:
                    break
                pieces.append(Piece(
                    id=f"{style.name}/{_strip_suffix(rel)}#{tune.x}", style=style.name,
                    family=style.family_name, source=rel, title=tune.title,
                    midi=folder / midi_name(path.stem, tune.x)))
            for k in range(n_bad):
                if limit is not None and len(pieces) >= limit:
                    break
                pieces.append(Piece(
                    id=f"{style.name}/{_strip_suffix(rel)}#bad{k}", style=style.name,
                    family=style.family_name, source=rel, title=None, midi=folder / "-",
                    skip="ABC tune with a repeated or bad X: number"))
            jobs.append(ConversionJob("abc", path, folder, cost=0.001 * len(tunes)))
        else:
            target = work_dir / "midi" / style.name / (rel + ".mid")
            pieces.append(Piece(
                id=f"{style.name}/{_strip_suffix(rel)}", style=style.name,
                family=style.family_name, source=rel, title=score_title(path),
                midi=target))
            jobs.append(ConversionJob("music21", path, target, cost=path.stat().st_size))
    return pieces, jobs


def score_title(path: Path) -> str | None:
    """A grouping title for a one-piece score file, read cheaply without parsing it.

    Humdrum files (Palestrina) give their work title (``!!!OPR``: the mass), so the
    movements of one mass stay together; Bach chorales their BWV number without the
    variant suffix (``bwv248.23-2`` → ``bwv248.23``); quartet movements their opus folder;
    anything else its file name.
    """
    if path.suffix == ".krn":
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("!!!OPR:"):
                        return line.split(":", 1)[1].strip()
                    if not line.startswith("!"):
                        break
        except OSError:
            return None
    match = re.match(r"^(bwv\d+(?:\.\d+)?)", path.name)
    if match:
        return match.group(1)
    if path.stem.startswith("movement"):
        return path.parent.name
    return path.stem


def slug(name: str) -> str:
    """A folder name as a style name: lower case, words joined by ``-``."""
    text = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return text or "style"


def enumerate_midi_dir(midi_dir: Path, *, limit: int | None = None
                       ) -> dict[str, tuple[str, list[Piece]]]:
    """User styles from a folder of folders of MIDI files: style name → (folder, pieces).

    Each sub-folder is a style named after it (see :func:`slug`); its MIDI files are found
    recursively and used in place.
    """
    styles: dict[str, tuple[str, list[Piece]]] = {}
    for folder in sorted(p for p in Path(midi_dir).iterdir() if p.is_dir()):
        name = slug(folder.name)
        if name in styles:
            raise ValueError(f"folders {styles[name][0]!r} and {folder.name!r} in {midi_dir} "
                             f"both give the style name {name!r}")
        files = sorted(p for p in folder.rglob("*")
                       if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)
        if limit is not None:
            files = files[:limit]
        pieces = [Piece(id=f"{name}/{_strip_suffix(_rel(f, folder))}", style=name,
                        family=f"user:{name}", source=str(f), title=f.stem, midi=f)
                  for f in files]
        styles[name] = (folder.name, pieces)
    return styles


# ----------------------------------------------------------------- music21 conversion

class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Timeout


def failed_marker(target: Path) -> Path:
    """The file that records why ``target`` could not be made (so a re-run skips it)."""
    return target.with_name(target.name + FAILED_SUFFIX)


def convert_m21_file(source: Path, target: Path, timeout_s: float = 120.0) -> str | None:
    """Parse ``source`` with music21 and write its MIDI to ``target``.

    Returns None on success or a short failure reason, which is also written to
    :func:`failed_marker` so that a resumed build does not try again. Runs in a worker
    process; a SIGALRM timer (where the platform has one) bounds the time per piece.
    """
    import music21

    from musegen.corpus.m21midi import write_score_midi

    use_alarm = hasattr(signal, "SIGALRM") and timeout_s > 0
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
    reason = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = music21.converter.parse(source, forceSource=True, storePickle=False)
            write_score_midi(score, target)
    except _Timeout:
        reason = f"music21 took longer than {timeout_s:g} s"
    except Exception as e:  # noqa: BLE001 - any parser failure skips the piece
        reason = f"music21 failed: {type(e).__name__}"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if reason is not None:
        write_text(failed_marker(target), reason + "\n")
    return reason
