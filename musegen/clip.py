"""`Clip`: the in-memory musical object everything in musegen passes around.

A clip is immutable: notes, tracks (program, drum flag), a tempo map, time signatures, a key,
lyrics attached to notes and a bar grid. Times are integer ticks at the fixed resolution
`PPQ` (ticks per quarter note); every field carries its unit in its name.

Reading and writing Standard MIDI Files goes through symusic (a C++ parser, ~100x faster than
pretty_midi), so the corpus builder and the interactive path share one loader. Any failure
becomes one `MidiFileError` that names the file and the reason.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from musegen.atomic import write_bytes
from musegen.errors import MidiFileError

PPQ = 480
"""Ticks per quarter note of every clip (MIDI written by musegen uses it too)."""

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_LENGTH_TICKS = PPQ * 4 * 20_000  # 20,000 bars of 4/4: longer is "likely corrupt"
MAX_NOTES = 2_000_000
END_MARKER = "musegen:end"

_PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
# Krumhansl-Kessler key profiles (major, minor), C as tonic.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_KK_PROFILES = np.stack([np.roll(p, tonic) for tonic in range(12) for p in (_KK_MAJOR, _KK_MINOR)])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; key locks add 11 (harmonic) for minor


@dataclass(frozen=True, slots=True)
class Note:
    """One note. `start_tick`/`duration_ticks` are at `PPQ` ticks per quarter note."""

    pitch: int
    velocity: int
    start_tick: int
    duration_ticks: int
    lyric: str | None = None

    @property
    def end_tick(self) -> int:
        return self.start_tick + self.duration_ticks

    @property
    def start_beats(self) -> float:
        return self.start_tick / PPQ

    @property
    def duration_beats(self) -> float:
        return self.duration_ticks / PPQ


@dataclass(frozen=True, slots=True)
class Track:
    """A voice or instrument: notes sorted by (start_tick, pitch)."""

    notes: tuple[Note, ...] = ()
    program: int = 0
    is_drum: bool = False
    name: str = ""
    channel: int | None = None  # MIDI channel 0..15 as read from a file; None: the writer's choice


@dataclass(frozen=True, slots=True)
class TempoChange:
    tick: int
    qpm: float  # quarter notes per minute


@dataclass(frozen=True, slots=True)
class KeySignature:
    """A key-signature event: `sharps` -7..7 (flats negative) and the mode, as MIDI stores it."""

    tick: int
    sharps: int
    minor: bool = False

    @property
    def key(self) -> str:
        """'Eb major', 'F# minor', ... (the spelling `estimate_key` uses)."""
        return _key_name(self.sharps, int(self.minor))

    @classmethod
    def of(cls, key: str, tick: int = 0, *, as_spelled: bool = True) -> KeySignature:
        """The signature of a key name ('D major', 'Ebm'): as spelled when the name is on the
        circle of fifths (Gb major: 6 flats), else (or with `as_spelled=False`, for an
        estimate's name) the enharmonic with fewer accidentals (C# major -> 5 flats)."""
        tonic, mode = parse_key(key)
        minor = mode == "minor"
        names = _MINOR_BY_SHARPS if minor else _MAJOR_BY_SHARPS
        spelled = key.strip().split()[0] if key.strip() else ""
        if spelled.endswith("m") and len(key.split()) == 1:
            spelled = spelled[:-1]
        spelled = spelled[:1].upper() + spelled[1:]
        if as_spelled and spelled in names:
            return cls(tick, names.index(spelled) - 7, minor)
        major_pc = (tonic + 3) % 12 if minor else tonic
        fifths = (major_pc * 7) % 12  # 0..11 sharps, or that minus 12 flats
        return cls(tick, fifths if fifths <= 6 else fifths - 12, minor)


@dataclass(frozen=True, slots=True)
class TimeSignature:
    tick: int
    numerator: int
    denominator: int

    @property
    def bar_ticks(self) -> int:
        return PPQ * 4 * self.numerator // self.denominator


@dataclass(frozen=True)
class Clip:
    """An immutable multi-track clip with a bar grid.

    `length_ticks` is where the clip ends (a whole number of bars for clips musegen makes);
    trailing silent bars are kept by writing an end marker into the MIDI file.
    """

    tracks: tuple[Track, ...]
    tempos: tuple[TempoChange, ...] = (TempoChange(0, 120.0),)
    time_signatures: tuple[TimeSignature, ...] = (TimeSignature(0, 4, 4),)
    key: str | None = None
    length_ticks: int = 0
    name: str = ""
    key_signatures: tuple[KeySignature, ...] = ()  # as given (a file's, a key lock's); may be empty
    _bars: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tempos or self.tempos[0].tick != 0:
            qpm = self.tempos[0].qpm if self.tempos else 120.0
            object.__setattr__(self, "tempos", (TempoChange(0, qpm), *self.tempos))
        if not self.time_signatures or self.time_signatures[0].tick != 0:
            first = self.time_signatures[0] if self.time_signatures else TimeSignature(0, 4, 4)
            ts = (TimeSignature(0, first.numerator, first.denominator), *self.time_signatures)
            object.__setattr__(self, "time_signatures", ts)
        end = max((n.end_tick for t in self.tracks for n in t.notes), default=0)
        object.__setattr__(self, "length_ticks", max(self.length_ticks, end))
        object.__setattr__(self, "_bars", tuple(_bar_grid(self.time_signatures, self.length_ticks)))
        if self.key_signatures:
            ks = _dedupe_events(self.key_signatures, lambda k: (k.sharps, k.minor))
            object.__setattr__(self, "key_signatures", ks)
        if self.key is None:
            key = self.key_signatures[0].key if self.key_signatures else estimate_key(self.pitched_notes())
            object.__setattr__(self, "key", key)

    # ------------------------------------------------------------------ views
    def pitched_notes(self) -> list[Note]:
        """All pitched (non-drum) notes of every track, sorted by onset."""
        out = [n for t in self.tracks if not t.is_drum for n in t.notes]
        out.sort(key=lambda n: (n.start_tick, n.pitch))
        return out

    def all_notes(self) -> list[Note]:
        """Every note of every track (drums included), sorted by onset."""
        out = [n for t in self.tracks for n in t.notes]
        out.sort(key=lambda n: (n.start_tick, n.pitch))
        return out

    @property
    def n_notes(self) -> int:
        return sum(len(t.notes) for t in self.tracks)

    @property
    def bar_starts(self) -> tuple[int, ...]:
        """Tick of each bar line, the clip's end included (`n_bars + 1` values)."""
        return self._bars

    @property
    def n_bars(self) -> int:
        return len(self._bars) - 1

    def time_signature_at(self, tick: int) -> TimeSignature:
        current = self.time_signatures[0]
        for ts in self.time_signatures:
            if ts.tick > tick:
                break
            current = ts
        return current

    def key_signature_at(self, tick: int) -> KeySignature | None:
        """The key signature in force at `tick` (None before the first one, or if none)."""
        current = None
        for k in self.key_signatures:
            if k.tick > tick:
                break
            current = k
        return current

    def tempo_at(self, tick: int) -> float:
        current = self.tempos[0].qpm
        for t in self.tempos:
            if t.tick > tick:
                break
            current = t.qpm
        return current

    @property
    def lyrics(self) -> list[str]:
        return [n.lyric for n in self.all_notes() if n.lyric]

    # ------------------------------------------------------------- editing
    def slice_bars(self, start_bar: int, end_bar: int) -> Clip:
        """Bars `start_bar` (inclusive) to `end_bar` (exclusive), 0-based, moved to tick 0.

        Notes starting inside the range are kept, cut at the range's end.
        """
        if not 0 <= start_bar <= end_bar <= self.n_bars:
            raise ValueError(
                f"bar range {start_bar}..{end_bar} is outside the clip's 0..{self.n_bars} bars"
            )
        lo, hi = self._bars[start_bar], self._bars[end_bar]
        ks = self.key_signature_at(lo)
        tracks = tuple(
            replace(
                t,
                notes=tuple(
                    replace(n, start_tick=n.start_tick - lo,
                            duration_ticks=min(n.end_tick, hi) - n.start_tick)
                    for n in t.notes
                    if lo <= n.start_tick < hi
                ),
            )
            for t in self.tracks
        )
        return Clip(
            tracks=tracks,
            tempos=window_events(self.tempos, lo, hi, TempoChange(0, self.tempo_at(lo))),
            time_signatures=window_events(
                self.time_signatures, lo, hi, replace(self.time_signature_at(lo), tick=0)
            ),
            key=self.key,
            length_ticks=hi - lo,
            name=self.name,
            key_signatures=window_events(self.key_signatures, lo, hi,
                                         replace(ks, tick=0) if ks is not None else None),
        )

    def concat(self, other: Clip) -> Clip:
        """`other` appended at this clip's end; track i joins track i (extra tracks added)."""
        offset = self.length_ticks
        n = max(len(self.tracks), len(other.tracks))
        tracks = []
        for i in range(n):
            mine = self.tracks[i] if i < len(self.tracks) else None
            theirs = other.tracks[i] if i < len(other.tracks) else None
            base = mine or replace(theirs, notes=())  # type: ignore[arg-type]
            moved = tuple(replace(x, start_tick=x.start_tick + offset) for x in
                          (theirs.notes if theirs else ()))
            tracks.append(replace(base, notes=base.notes + moved))
        tempos = self.tempos + tuple(replace(t, tick=t.tick + offset) for t in other.tempos)
        sigs = self.time_signatures + tuple(
            replace(t, tick=t.tick + offset) for t in other.time_signatures
        )
        keys = self.key_signatures + tuple(replace(k, tick=k.tick + offset) for k in other.key_signatures)
        return Clip(
            tracks=tuple(tracks),
            tempos=_dedupe_events(tempos, lambda t: t.qpm),
            time_signatures=_dedupe_events(sigs, lambda t: (t.numerator, t.denominator)),
            key=self.key,
            length_ticks=offset + other.length_ticks,
            name=self.name,
            key_signatures=keys,
        )

    def transpose(self, semitones: int) -> Clip:
        """Pitched tracks moved by `semitones` (drums stay); notes leaving 0..127 are dropped."""
        tracks = tuple(
            t if t.is_drum else replace(t, notes=tuple(
                replace(n, pitch=n.pitch + semitones) for n in t.notes
                if 0 <= n.pitch + semitones <= 127))
            for t in self.tracks
        )
        return replace(self, tracks=tracks, key=None, key_signatures=())

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Clip:
        """Read a Standard MIDI File (format 0 or 1, any PPQ).

        Raises `MidiFileError` naming the file and the reason for anything unreadable.
        """
        p = Path(path)
        return cls.from_bytes(read_regular_file(p), name=p.stem, source=p)

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "", source: object = "<bytes>") -> Clip:
        if not data:
            raise MidiFileError(source, "the file is empty")
        if data[:4] != b"MThd":
            raise MidiFileError(source, "not a Standard MIDI File (no 'MThd' header)")
        try:
            from symusic import Score

            score = Score.from_midi(data)
        except Exception as e:  # symusic raises plain RuntimeError/ValueError
            raise MidiFileError(source, f"corrupt or truncated MIDI: {e}") from None
        from musegen.smf import note_groups

        return cls.from_symusic(score, name=name, source=source, note_groups=note_groups(data))

    @classmethod
    def from_symusic(cls, score: object, *, name: str = "", source: object = "<score>",
                     note_groups: Sequence[tuple[int, int, int, int]] | None = None) -> Clip:
        """Build a clip from a `symusic.Score` (tick time, any resolution).

        `note_groups` (`musegen.smf.note_groups` of the file's bytes) gives each track its MIDI
        channel; without it, or when it does not line up with symusic's tracks, channels are None.
        """
        tpq = int(score.ticks_per_quarter)  # type: ignore[attr-defined]
        if tpq <= 0 or tpq > 32767:
            raise MidiFileError(source, f"absurd resolution of {tpq} ticks per quarter")

        def tk(t: int) -> int:
            return int(round(t * PPQ / tpq))

        src = list(score.tracks)  # type: ignore[attr-defined]
        tracks = _tracks_of(src, _lyrics_by_track(src, tk), _channels(src, note_groups), tk, source)
        end_tick, marked = _end_tick(score, tracks, tk)
        if not tracks:
            if not marked or end_tick <= 0:
                raise MidiFileError(source, "the file holds no notes")
            tracks.append(_silent_track(src))  # a take of silent bars, as musegen writes it
        if end_tick > MAX_LENGTH_TICKS:
            raise MidiFileError(source, f"{end_tick / PPQ:.0f} quarter notes long: likely corrupt")
        tempos, sigs, keys = _score_meta(score, tk)
        return cls(
            tracks=tuple(tracks),
            tempos=_dedupe_events(tempos, lambda t: t.qpm) or (TempoChange(0, 120.0),),
            time_signatures=_dedupe_events(sigs, lambda t: (t.numerator, t.denominator))
            or (TimeSignature(0, 4, 4),),
            length_ticks=_round_up_to_bar(sigs or (TimeSignature(0, 4, 4),), end_tick),
            name=name,
            key_signatures=keys,
        )

    def to_symusic(self) -> object:
        from symusic import KeySignature as SKS
        from symusic import Note as SNote
        from symusic import Score, Tempo, TextMeta
        from symusic import TimeSignature as STS
        from symusic import Track as STrack

        score = Score(PPQ)
        for t in self.tracks:
            st = STrack(t.name, t.program, t.is_drum)
            for n in t.notes:
                st.notes.append(SNote(n.start_tick, n.duration_ticks, n.pitch, n.velocity))
                if n.lyric:
                    st.lyrics.append(TextMeta(n.start_tick, n.lyric))
            score.tracks.append(st)
        for tc in self.tempos:
            score.tempos.append(Tempo(tc.tick, tc.qpm))
        for ts in self.time_signatures:
            score.time_signatures.append(STS(ts.tick, ts.numerator, ts.denominator))
        for k in self.key_signatures:
            score.key_signatures.append(SKS(k.tick, k.sharps, int(k.minor)))
        score.markers.append(TextMeta(self.length_ticks, END_MARKER))
        return score

    def to_bytes(self) -> bytes:
        data = bytes(self.to_symusic().dumps_midi())  # type: ignore[attr-defined]
        if any(t.channel is not None for t in self.tracks):
            from musegen.smf import with_channels

            data = with_channels(data, [t.channel for t in self.tracks])
        return data

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a format-1 MIDI file at `PPQ` atomically (temp file, fsync, rename)."""
        p = Path(path)
        write_bytes(p, self.to_bytes())
        return p


def read_regular_file(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of `path`, which must be a regular file of 1..`limit` bytes.

    A FIFO, a device, a socket or a folder is refused before anything is read: reading a FIFO
    would wait for a writer forever. The path is checked with `stat` before it is opened (so a
    device is never opened), opened with O_NONBLOCK (so opening a FIFO can't wait) and checked
    again with `fstat` on what was opened (so swapping the file for a FIFO in between can't
    hang the reader either). The size limit is checked before reading, and again while
    reading, for a file that grows. Every failure is a `MidiFileError` naming the file.
    """
    p = Path(path)
    try:
        _check_regular(p, os.stat(p), limit)
        fd = os.open(p, os.O_RDONLY | _O_NOWAIT)
    except OSError as e:
        raise MidiFileError(p, f"cannot open: {e.strerror or e}") from None
    try:
        _check_regular(p, os.fstat(fd), limit)
        chunks, n = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - n))
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
            if n > limit:
                raise MidiFileError(p, f"more than the {limit} byte limit (it grew while read)")
    except OSError as e:
        raise MidiFileError(p, f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if not n:
        raise MidiFileError(p, "the file is empty")
    return b"".join(chunks)


# no waiting on a FIFO's writer, no controlling terminal, not inherited, binary on Windows
_O_NOWAIT = sum(getattr(os, f, 0) for f in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY"))


def _check_regular(p: Path, st: os.stat_result, limit: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise MidiFileError(p, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a special file")
        raise MidiFileError(p, f"is {kind}, not a regular file; only regular files are read")
    if st.st_size == 0:
        raise MidiFileError(p, "the file is empty")
    if st.st_size > limit:
        raise MidiFileError(p, f"{st.st_size} bytes is larger than the {limit} limit")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Deprecated: use `musegen.atomic.write_bytes` (the one atomic write)."""
    warnings.warn("musegen.clip.atomic_write_bytes is deprecated; use musegen.atomic.write_bytes",
                  DeprecationWarning, stacklevel=2)
    write_bytes(path, data)


def estimate_key(notes: Sequence[Note]) -> str | None:
    """Krumhansl-Schmuckler key estimate from duration-weighted pitch classes.

    Hand-written (a dozen lines) because music21's analyser needs a full Stream conversion,
    which costs ~100x more than the clip load itself.
    """
    if not notes:
        return None
    hist = np.bincount([n.pitch % 12 for n in notes], [n.duration_ticks for n in notes],
                       minlength=12).astype(float)
    if not hist.std() > 0:
        return f"{_PITCH_NAMES[0]} major"  # every profile correlates 0: the first one
    # all 24 correlations in one call (rows: C major, C minor, C# major, ...)
    r = np.corrcoef(np.vstack([hist, _KK_PROFILES]))[0, 1:]
    tonic, minor = divmod(int(np.argmax(r)), 2)
    return f"{_PITCH_NAMES[tonic]} {'minor' if minor else 'major'}"


def parse_key(key: str) -> tuple[int, str]:
    """'A minor' / 'Eb major' / 'f#m' -> (tonic pitch class, mode)."""
    text = key.strip().replace("\u266f", "#").replace("\u266d", "b")
    parts = text.split()
    name = parts[0]
    mode = parts[1].lower() if len(parts) > 1 else "major"
    if len(parts) == 1 and len(name) > 1 and name.endswith("m") and name[:-1]:
        name, mode = name[:-1], "minor"
    letters = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    if not name or name[0].upper() not in letters or mode not in ("major", "minor"):
        raise ValueError(f"key {key!r} is not like 'C major', 'F# minor' or 'Ebm'")
    pc = letters[name[0].upper()]
    for ch in name[1:]:
        if ch == "#":
            pc += 1
        elif ch == "b":
            pc -= 1
        else:
            raise ValueError(f"key {key!r} is not like 'C major', 'F# minor' or 'Ebm'")
    return pc % 12, mode


# key names along the circle of fifths, index = sharps + 7 (-7 = seven flats)
_MAJOR_BY_SHARPS = ("Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#")
_MINOR_BY_SHARPS = ("Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#")


def _key_name(sharps: int, tonality: int) -> str:
    """symusic's key = sharps (-7..7), tonality 0 major / 1 minor; spelled as the signature
    is (6 sharps: F# major, 6 flats: Gb major)."""
    names = _MINOR_BY_SHARPS if tonality == 1 else _MAJOR_BY_SHARPS
    return f"{names[sharps + 7]} {'minor' if tonality == 1 else 'major'}"


def _lyrics_by_track(src: Sequence, tk: Callable[[int], int]) -> list[dict[int, str]]:
    """Each symusic track's lyrics by tick (the first per tick, stripped, empty ones dropped).

    symusic puts a MIDI track's lyric events on a sibling track without notes, just after the
    one holding the notes: each such orphan's lyrics go to its sibling (the last track with
    notes, or the track with notes of the orphan's name when the one before is named otherwise).
    """
    lyrics_of: list[dict[int, str]] = [{} for _ in src]
    owner = 0
    for i, tr in enumerate(src):
        if len(tr.notes):
            owner = i
        for m in tr.lyrics:
            text = m.text.strip()
            if text:
                target = i if len(tr.notes) else owner
                if not len(tr.notes) and i > 0 and src[i - 1].name != tr.name:
                    target = next((j for j, o in enumerate(src)
                                   if o.name == tr.name and len(o.notes)), owner)
                lyrics_of[target].setdefault(tk(m.time), text)
    return lyrics_of


def _tracks_of(src: Sequence, lyrics_of: Sequence[dict[int, str]], channel_of: Sequence[int | None],
               tk: Callable[[int], int], source: object) -> list[Track]:
    """The tracks that hold notes, at `PPQ`, each note with its lyric; MidiFileError past
    MAX_NOTES notes."""
    tracks = []
    n_total = 0
    for tr, lyr, ch in zip(src, lyrics_of, channel_of):
        notes = _notes_of(tr, lyr, tk)
        n_total += len(notes)
        if n_total > MAX_NOTES:
            raise MidiFileError(source, f"more than {MAX_NOTES} notes: likely corrupt")
        if notes:
            tracks.append(Track(tuple(notes), int(tr.program), bool(tr.is_drum), str(tr.name), ch))
    return tracks


def _notes_of(tr: object, lyr: dict[int, str], tk: Callable[[int], int]) -> list[Note]:
    """One symusic track's playable notes (positive length, pitch 0..127), sorted by (start,
    pitch); the first note at a tick takes the lyric there (taken out of `lyr`)."""
    notes = []
    for n in tr.notes:  # type: ignore[attr-defined]
        if n.duration <= 0 or not 0 <= n.pitch <= 127:
            continue
        start = tk(n.time)
        notes.append(Note(int(n.pitch), max(1, min(127, int(n.velocity))), start,
                          max(1, tk(n.time + n.duration) - start),
                          lyr.pop(start, None)))
    notes.sort(key=lambda x: (x.start_tick, x.pitch))
    return notes


def _end_tick(score: object, tracks: Sequence[Track], tk: Callable[[int], int]) -> tuple[int, bool]:
    """(end of the last note or of musegen's end marker, whichever is later; whether the
    score has that marker)."""
    end_tick = max((n.end_tick for t in tracks for n in t.notes), default=0)
    marked = False
    for m in score.markers:  # type: ignore[attr-defined]
        if m.text == END_MARKER:
            end_tick, marked = max(end_tick, tk(m.time)), True
    return end_tick, marked


def _silent_track(src: Sequence) -> Track:
    """The one track of a take of silent bars: the file's first track's program, drum flag and
    name, if it has one."""
    first = next(iter(src), None)
    if first is None:
        return Track((), 0, False, "")
    return Track((), int(first.program), bool(first.is_drum), str(first.name))


def _score_meta(score: object, tk: Callable[[int], int]
                ) -> tuple[tuple[TempoChange, ...], tuple[TimeSignature, ...], tuple[KeySignature, ...]]:
    """The score's tempos (1..1000 qpm), time signatures (power-of-two denominators) and key
    signatures (-7..7 sharps, major or minor) at `PPQ`; others are dropped."""
    tempos = tuple(TempoChange(tk(t.time), float(t.qpm)) for t in score.tempos  # type: ignore[attr-defined]
                   if 1.0 <= t.qpm <= 1000.0)
    sigs = tuple(
        TimeSignature(tk(t.time), int(t.numerator), int(t.denominator))
        for t in score.time_signatures  # type: ignore[attr-defined]
        if t.numerator > 0 and t.denominator in (1, 2, 4, 8, 16, 32, 64)
    )
    keys = tuple(KeySignature(tk(k.time), int(k.key), bool(k.tonality))
                 for k in score.key_signatures  # type: ignore[attr-defined]
                 if -7 <= int(k.key) <= 7 and int(k.tonality) in (0, 1))
    return tempos, sigs, keys


def _channels(src: Sequence, groups: Sequence[tuple[int, int, int, int]] | None) -> list[int | None]:
    """Each symusic track's channel from the file's note groups, matched in symusic's order;
    all None unless the groups line up exactly with the tracks that hold notes."""
    none: list[int | None] = [None] * len(src)
    if not groups:
        return none
    with_notes = [i for i, tr in enumerate(src) if len(tr.notes)]
    if len(with_notes) != len(groups):
        return none
    out = list(none)
    for i, (_, ch, program, count) in zip(with_notes, groups):
        tr = src[i]
        if int(tr.program) != program or len(tr.notes) > count or bool(tr.is_drum) != (ch == 9):
            return none
        out[i] = ch
    return out


def _bar_grid(sigs: Sequence[TimeSignature], length_ticks: int) -> list[int]:
    bars = [0]
    i = 0
    while bars[-1] < length_ticks:
        while i + 1 < len(sigs) and sigs[i + 1].tick <= bars[-1]:
            i += 1
        step = max(1, sigs[i].bar_ticks)
        nxt = bars[-1] + step
        if i + 1 < len(sigs) and bars[-1] < sigs[i + 1].tick < nxt:
            nxt = sigs[i + 1].tick  # a signature change mid-bar starts a new bar there
        bars.append(nxt)
    return bars


def _round_up_to_bar(sigs: Sequence[TimeSignature], end_tick: int) -> int:
    return _bar_grid(sorted(sigs, key=lambda s: s.tick), end_tick)[-1]


def window_events(events: Iterable, lo: int, hi: int, first: object | None = None) -> tuple:
    """Events strictly inside (lo, hi) moved to start at `lo`, after `first` (the event in force
    at `lo`, at tick 0; None: there is none)."""
    inside = tuple(replace(e, tick=e.tick - lo) for e in events if lo < e.tick < hi)
    return ((first,) if first is not None else ()) + inside


def _dedupe_events(events: Iterable, value: object) -> tuple:
    """Sorted by tick; one event per tick (the last wins); repeats of the same value dropped."""
    by_tick: dict[int, object] = {}
    for e in sorted(events, key=lambda e: e.tick):
        by_tick[e.tick] = e
    out: list = []
    for e in by_tick.values():
        if not out or value(out[-1]) != value(e):  # type: ignore[operator]
            out.append(e)
    return tuple(out)


def bars_to_seconds(clip: Clip) -> float:
    """Duration of the clip in seconds under its tempo map."""
    total, last_tick, qpm = 0.0, 0, clip.tempos[0].qpm
    for t in clip.tempos[1:]:
        total += (t.tick - last_tick) / PPQ * 60.0 / qpm
        last_tick, qpm = t.tick, t.qpm
    return total + (clip.length_ticks - last_tick) / PPQ * 60.0 / qpm


__all__ = [
    "PPQ",
    "Clip",
    "Note",
    "Track",
    "TempoChange",
    "TimeSignature",
    "KeySignature",
    "window_events",
    "read_regular_file",
    "estimate_key",
    "parse_key",
    "bars_to_seconds",
]
