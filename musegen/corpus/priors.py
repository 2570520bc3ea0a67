"""Each style's real keys, tempi and metres, measured from its source pieces (not from the
training shards, whose pitches the trainer transposes at random): what a start from nothing
draws from (`musegen.priors.StylePriors` reads it).

    python -m musegen.corpus.priors            # rewrites musegen/models/default/style_priors.json

Keys: an ABC tune's key is estimated from its notes (`musegen.clip.estimate_key`, on the MIDI
abc2midi writes, so that a tune notated `K:G` but sung in G minor counts as G minor); a score's
key is its notated signature and mode (MusicXML `<fifths>`/`<mode>`, Humdrum `*k[..]` and
`*G:mix`), a church mode counted as the major or minor key on its final (dorian, phrygian,
aeolian: minor; mixolydian, lydian, ionian: major). Tempi: the piece's own marking (ABC `Q:`,
MusicXML `<sound tempo>`, Humdrum `*MM`); most folk collections mark none, so a style with
fewer than `MIN_MARKED` marked pieces (or under `MIN_MARKED_SHARE` of them) draws from its
family's marked pieces and, failing that, from every marked piece of the corpus
(`tempo_source` says which). Metres: the first time signature.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from musegen.atomic import write_json
from musegen.clip import Clip, estimate_key
from musegen.corpus.abc import convert_abc_file, midi_name, read_abc_text
from musegen.corpus.styles import Style, default_styles, style_files
from musegen.priors import FILE_NAME

FORMAT = 1
MIN_MARKED = 20  # marked pieces a style needs to draw tempi from its own marks...
MIN_MARKED_SHARE = 0.1  # ...and the share of its pieces they must be (O'Neill marks 22 of 2,009: slow airs)
_MINOR_MODES = {"minor", "min", "m", "dor", "dorian", "phr", "phrygian", "aeo", "aeolian", "loc"}
_MAJOR_MODES = {"", "major", "maj", "ion", "ionian", "mix", "mixolydian", "lyd", "lydian"}
_LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass(frozen=True)
class PieceFacts:
    key: str | None  # "G major", "E minor"
    qpm: float | None  # the marked tempo, quarter notes per minute
    metre: str | None  # "6/8"


# --------------------------------------------------------------------------- ABC
def _abc_tunes(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(X number, first value of each header field) per tune of an ABC text."""
    x, head = None, {}
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"^X:\s*(\d+)", line)
        if m:
            if x is not None:
                yield x, head
            x, head = int(m.group(1)), {}
        elif x is not None and re.match(r"^[A-Za-z]:", line):
            head.setdefault(line[0], line[2:].strip())
    if x is not None:
        yield x, head


def abc_qpm(q: str, unit: str | None) -> float | None:
    """An ABC `Q:` field in quarter notes per minute: `1/4=120`, `3/8=120`, `"Allegro" 1/2=90`,
    or a bare number (beats of the default note length `L:`, 1/8 when not given)."""
    q = re.sub(r'"[^"]*"', " ", q).strip()
    m = re.search(r"((?:\d+/\d+\s*)+)=\s*(\d+(?:\.\d+)?)", q)
    if m:
        beat = sum(Fraction(f) for f in m.group(1).split())
        return float(beat * 4) * float(m.group(2))
    m = re.fullmatch(r"(\d+(?:\.\d+)?)", q)
    if m:
        length = Fraction(unit.strip()) if unit and re.fullmatch(r"\s*\d+/\d+\s*", unit) else Fraction(1, 8)
        return float(length * 4) * float(m.group(1))
    return None


def _metre(text: str | None) -> str | None:
    if not text:
        return None
    text = text.strip()
    if text in ("C", "C|"):
        return "4/4" if text == "C" else "2/2"
    m = re.match(r"(\d+)\s*/\s*(\d+)", text)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def abc_facts(path: Path, work: Path) -> list[PieceFacts]:
    """One `PieceFacts` per tune of an ABC file (its key estimated from abc2midi's MIDI)."""
    folder = work / path.stem
    convert_abc_file(path, folder)
    out = []
    for x, head in _abc_tunes(read_abc_text(path)):
        midi = folder / midi_name(path.stem, x)
        key = None
        if midi.exists():
            try:
                key = estimate_key(Clip.load(midi).pitched_notes())
            except Exception:  # noqa: BLE001 - an unreadable tune has no key
                key = None
        q = head.get("Q")
        out.append(PieceFacts(key, abc_qpm(q, head.get("L")) if q else None, _metre(head.get("M"))))
    return out


# ------------------------------------------------------------------------ scores
def key_name(tonic: int, minor: bool) -> str:
    """A key in `estimate_key`'s spelling ('Eb major', 'F# minor')."""
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return f"{names[tonic % 12]} {'minor' if minor else 'major'}"


def _from_fifths(fifths: int, minor: bool) -> str:
    major_pc = (7 * fifths) % 12
    return key_name((major_pc + 9) % 12 if minor else major_pc, minor)


def xml_facts(path: Path) -> PieceFacts:
    """A MusicXML (.xml or zipped .mxl) score's first key, tempo marking and metre."""
    if path.suffix == ".mxl":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(".xml") and not n.startswith("META")]
            text = z.read(names[0]).decode("utf-8", "replace") if names else ""
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
    f = re.search(r"<fifths>\s*(-?\d+)\s*</fifths>", text)
    mode = re.search(r"<mode>\s*([a-z]+)\s*</mode>", text)
    key = _from_fifths(int(f.group(1)), bool(mode and mode.group(1) in _MINOR_MODES)) if f else None
    t = re.search(r'<sound[^>]*\btempo="(\d+(?:\.\d+)?)"', text)
    b = re.search(r"<beats>\s*(\d+)\s*</beats>\s*<beat-type>\s*(\d+)\s*</beat-type>", text)
    return PieceFacts(key, float(t.group(1)) if t else None, f"{b.group(1)}/{b.group(2)}" if b else None)


def krn_facts(path: Path) -> PieceFacts:
    """A Humdrum score's key designation (`*G:mix`; else its signature, major), `*MM` tempo
    and first `*M` metre."""
    key = sig_key = qpm = metre = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        first = line.split("\t", 1)[0]
        m = re.fullmatch(r"\*([A-Ga-g])([#-]*):([a-z]*)", first)
        if m and key is None:
            pc = _LETTERS[m.group(1).lower()] + m.group(2).count("#") - m.group(2).count("-")
            mode = m.group(3) or ("minor" if m.group(1).islower() else "major")
            key = key_name(pc, mode in _MINOR_MODES)
        m = re.fullmatch(r"\*MM(\d+(?:\.\d+)?)", first)
        if m and qpm is None:
            qpm = float(m.group(1))
        m = re.fullmatch(r"\*M(\d+/\d+)", first)
        if m and metre is None:
            metre = m.group(1)
        if sig_key is None and first.startswith("*k["):
            sig = first[3:-1]
            sig_key = _from_fifths(sig.count("#") - sig.count("-"), False)
    return PieceFacts(key or sig_key, qpm, metre)


def style_facts(style: Style, work: Path) -> list[PieceFacts]:
    out: list[PieceFacts] = []
    for path in style_files(style):
        if style.kind == "abc":
            out += abc_facts(path, work / style.name)
        elif path.suffix == ".krn":
            out.append(krn_facts(path))
        else:
            out.append(xml_facts(path))
    return out


# ------------------------------------------------------------------------ tables
def _shares(values: list, digits: int = 4) -> dict[str, float]:
    c = Counter(v for v in values if v is not None)
    n = sum(c.values())
    return {str(k): round(v / n, digits) for k, v in c.most_common()} if n else {}


def measure(styles: list[Style] | None = None) -> dict:
    """The priors of every default style (or `styles`): {"format", "styles": {name: {...}}}."""
    styles = default_styles() if styles is None else styles
    facts: dict[str, list[PieceFacts]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in styles:
            facts[s.name] = style_facts(s, Path(tmp))
    family = {s.name: s.family_name for s in styles}
    marked = {n: [f.qpm for f in fs if f.qpm] for n, fs in facts.items()}
    everything = [q for qs in marked.values() for q in qs]
    out = {}
    for name, fs in facts.items():
        own = marked[name]
        kin = [q for n, qs in marked.items() if family[n] == family[name] for q in qs]
        if len(own) >= max(MIN_MARKED, MIN_MARKED_SHARE * len(fs)):
            source, tempi = "own", own
        elif len(kin) >= MIN_MARKED:  # the family's marked pieces
            source, tempi = f"family:{family[name]}", kin
        else:
            source, tempi = "corpus", everything
        out[name] = {
            "pieces": len(fs),
            "keys": _shares([f.key for f in fs]),
            "metres": _shares([f.metre for f in fs]),
            "tempo_marked": len(own),
            "tempo_source": source,
            "tempi_qpm": dict(sorted(_shares([str(round(q)) for q in tempi]).items(),
                                     key=lambda kv: float(kv[0]))),
        }
    return {"format": FORMAT, "command": "python -m musegen.corpus.priors", "styles": out}


if __name__ == "__main__":  # pragma: no cover - the regeneration command
    import argparse

    ap = argparse.ArgumentParser(description="Measure each style's keys, tempi and metres from its "
                                 "source pieces and write them as a model's style priors.")
    ap.add_argument("target", nargs="?", type=Path,
                    default=Path(__file__).resolve().parents[1] / "models" / "default" / FILE_NAME,
                    help=f"the file to write (default: the shipped model's {FILE_NAME})")
    target = ap.parse_args().target
    if target.is_dir():
        target = target / FILE_NAME
    write_json(target, measure())
    print(f"wrote {target}")
