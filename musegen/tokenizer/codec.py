"""Clip <-> tokens (musegen-REMI). Pure functions over a `Vocab`; no I/O."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from musegen.clip import PPQ, Clip, Note, TempoChange, TimeSignature, Track
from musegen.errors import TokenizeError
from musegen.tokenizer.vocab import DRUM_PROGRAM, TICKS_PER_QUARTER, Vocab

GRID = PPQ // TICKS_PER_QUARTER  # clip ticks per grid step


def velocity_bin(velocity: int, n_bins: int = 8) -> int:
    return min(n_bins - 1, max(0, int(velocity)) * n_bins // 128)


def nearest_index(values: tuple, x: float) -> int:
    i = bisect.bisect_left(values, x)
    if i == 0:
        return 0
    if i == len(values):
        return len(values) - 1
    return i if values[i] - x < x - values[i - 1] else i - 1


def tempo_bin(qpm: float, tempos: tuple[float, ...]) -> int:
    logs = [math.log(t) for t in tempos]
    return nearest_index(tuple(logs), math.log(max(qpm, 1e-3)))


@dataclass(frozen=True, slots=True)
class _QNote:
    bar: int
    position: int
    track: int
    pitch: int
    vel_bin: int
    dur_index: int


@dataclass(frozen=True)
class Quantized:
    """A clip snapped to the token grid: what `decode(encode(clip))` gives back."""

    programs: tuple[int, ...]  # per track, DRUM_PROGRAM for drums
    bar_sigs: tuple[int, ...]  # per bar: index into vocab.time_signatures
    bar_tempos: tuple[int, ...]  # per bar: index into vocab.tempos_qpm
    notes: tuple[_QNote, ...]  # sorted (bar, position, track, pitch)


Cancelled = Callable[[], bool]
CHECK_EVERY = 4096  # notes or tokens between two calls of a `cancelled` callback


def quantize(clip: Clip, v: Vocab, *, bars: tuple[int, int] | None = None,
             cancelled: Cancelled | None = None) -> Quantized:
    """The clip on the token grid. `bars=(first, end)`: only bars first..end-1 (0-based), as
    bars 0.. of the result; the track list is still the whole clip's, so serializing gives
    the tokens of those bars exactly as in the whole clip's sequence (restarted at `first`).
    Only the notes of those bars are visited. `cancelled()` true stops with InterruptedError."""
    tracks = _tracks_to_encode(clip, v)
    first, end = _bar_range(clip, bars)
    bar_sigs, bar_tempos = _bar_heads(clip, v, first, end)
    starts = clip.bar_starts
    # bar lines on the grid (they are multiples of GRID)
    grid_bars = [b // GRID for b in starts[first:end + 1]]
    to_end = end == clip.n_bars  # notes snapped onto the clip's end open a bar there
    lo_tick, hi_tick = starts[first] - GRID, starts[end] + GRID  # onsets that may snap inside
    best: dict[tuple[int, int, int], _QNote] = {}
    for ti, n in _notes_between(tracks, lo_tick if first else None,
                                None if to_end else hi_tick, cancelled):
        q = int(round(n.start_tick / GRID))
        b = bisect.bisect_right(grid_bars, q) - 1
        if b < 0 or (b >= len(bar_sigs) and not to_end):
            continue  # snaps into a bar outside the range
        if b >= len(bar_sigs):  # a note snapped onto the clip's end: open bars up to it
            _open_bars(v, b, bar_sigs, bar_tempos, grid_bars)
        pos = q - grid_bars[b]
        if pos >= _bar_len(v, bar_sigs[b]):
            raise TokenizeError(f"bar {first + b} is longer than its time signature")
        d = nearest_index(v.durations, max(1.0, n.duration_ticks / GRID))
        k = (ti, b * 10_000 + pos, n.pitch)
        if k not in best or best[k].dur_index < d:
            best[k] = _QNote(b, pos, ti, n.pitch, velocity_bin(n.velocity, v.n_velocities), d)
    notes = tuple(sorted(best.values(), key=lambda n: (n.bar, n.position, n.track, n.pitch)))
    programs = tuple(DRUM_PROGRAM if t.is_drum else t.program for t in tracks)
    return Quantized(programs, tuple(bar_sigs), tuple(bar_tempos), notes)


def _tracks_to_encode(clip: Clip, v: Vocab) -> list[Track]:
    """The clip's tracks, silent ones too: a voice that rests (or has not entered yet) is
    still a voice of the music; a clip without any note: its first track."""
    tracks = list(clip.tracks) if any(t.notes for t in clip.tracks) else list(clip.tracks[:1])
    if not tracks:
        raise TokenizeError("the clip has no tracks")
    if len(tracks) > v.n_tracks:
        raise TokenizeError(f"{len(tracks)} tracks; the tokenizer holds at most {v.n_tracks}")
    return tracks


def _bar_range(clip: Clip, bars: tuple[int, int] | None) -> tuple[int, int]:
    first, end = (0, clip.n_bars) if bars is None else bars
    if not 0 <= first <= end <= clip.n_bars:
        raise TokenizeError(f"bars {first}..{end} outside the clip's 0..{clip.n_bars}")
    return first, end


def _bar_heads(clip: Clip, v: Vocab, first: int, end: int) -> tuple[list[int], list[int]]:
    """Per bar first..end-1: its time signature and tempo as vocabulary indices."""
    starts = clip.bar_starts
    sig_index = {sig: i for i, sig in enumerate(v.time_signatures)}
    bar_sigs, bar_tempos = [], []
    for b in range(first, end):
        ts = clip.time_signature_at(starts[b])
        key = (ts.numerator, ts.denominator)
        if key not in sig_index:
            raise TokenizeError(f"time signature {key[0]}/{key[1]} is not in the vocabulary")
        bar_sigs.append(sig_index[key])
        bar_tempos.append(tempo_bin(clip.tempo_at(starts[b]), v.tempos_qpm))
    return bar_sigs, bar_tempos


def _notes_between(tracks: list[Track], lo_tick: int | None, hi_tick: int | None,
                   cancelled: Cancelled | None) -> Iterator[tuple[int, Note]]:
    """(track index, note) for the notes with onsets in lo_tick..hi_tick-1 (None: no bound),
    track by track; `cancelled()` true (asked every CHECK_EVERY notes) stops the walk."""
    seen = 0
    for ti, t in enumerate(tracks):
        i = 0 if lo_tick is None else bisect.bisect_left(t.notes, lo_tick, key=_onset)
        j = len(t.notes) if hi_tick is None else bisect.bisect_left(t.notes, hi_tick, key=_onset)
        for n in t.notes[i:j]:
            seen += 1
            if cancelled is not None and seen % CHECK_EVERY == 0 and cancelled():
                raise InterruptedError("cancelled while encoding")
            yield ti, n


def _open_bars(v: Vocab, b: int, bar_sigs: list[int], bar_tempos: list[int],
               grid_bars: list[int]) -> None:
    """Extend the bars (in place) up to bar `b`, each like the last one."""
    while b >= len(bar_sigs):
        bar_sigs.append(bar_sigs[-1])
        bar_tempos.append(bar_tempos[-1])
        grid_bars.append(grid_bars[-1] + _bar_len(v, bar_sigs[-1]))


def _onset(n: Note) -> int:
    return n.start_tick


def _bar_len(v: Vocab, sig_index: int) -> int:
    n, d = v.time_signatures[sig_index]
    return TICKS_PER_QUARTER * 4 * n // d


def serialize(q: Quantized, v: Vocab, *, eos: bool = True,
              cancelled: Cancelled | None = None) -> np.ndarray:
    out = [v.bos]
    for i, p in enumerate(q.programs):
        out += [v.id("track", i), v.id("program", p)]
    k, n_notes = 0, len(q.notes)
    prev_sig = prev_tempo = -1
    for b in range(len(q.bar_sigs)):
        out.append(v.bar)
        if q.bar_sigs[b] != prev_sig:
            out.append(v.id("timesig", q.bar_sigs[b]))
            prev_sig = q.bar_sigs[b]
        if q.bar_tempos[b] != prev_tempo:
            out.append(v.id("tempo", q.bar_tempos[b]))
            prev_tempo = q.bar_tempos[b]
        track, vel, pos = 0, v.default_velocity_bin, -1
        while k < n_notes and q.notes[k].bar == b:
            n = q.notes[k]
            if n.position != pos:
                out.append(v.id("position", n.position))
                pos = n.position
            if n.track != track:
                out.append(v.id("track", n.track))
                track = n.track
            if n.vel_bin != vel:
                out.append(v.id("velocity", n.vel_bin))
                vel = n.vel_bin
            out += [v.id("pitch", n.pitch), v.id("duration", n.dur_index)]
            k += 1
            if cancelled is not None and k % CHECK_EVERY == 0 and cancelled():
                raise InterruptedError("cancelled while encoding")
    if eos:
        out.append(v.eos)
    return np.asarray(out, dtype=np.uint16)


def parse(ids: np.ndarray | list[int], v: Vocab) -> Quantized:
    """Tokens of a plain sequence (BOS ... [EOS]) back to the grid. Lenient about the end."""
    toks = _plain_tokens(ids, v)
    first_bar = toks.index(v.bar) if v.bar in toks else len(toks)
    programs, pitch = _parse_head(toks[:first_bar], v)
    bar_sigs, bar_tempos, notes = _parse_bars(toks[first_bar:], v, len(programs), pitch)
    if not programs:
        raise TokenizeError("the sequence declares no track")
    return Quantized(tuple(programs), tuple(bar_sigs), tuple(bar_tempos), tuple(notes))


def _plain_tokens(ids: np.ndarray | list[int], v: Vocab) -> list[int]:
    """The ids as Python ints, up to the first EOS / FILL_END (BOS and PAD still in)."""
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu":
        toks = ids.tolist()  # one C call instead of an int() per numpy scalar
    else:
        toks = [int(x) for x in ids]
    ends = [toks.index(t) for t in (v.eos, v.fill_end) if t in toks]
    return toks[:min(ends)] if ends else toks


def _parse_head(toks: list[int], v: Vocab) -> tuple[list[int], int | None]:
    """The tokens before the first BAR: the programs declared, and a PITCH left open."""
    programs: list[int] = []
    pitch = None
    skip, kinds, r = (v.bos, v.pad), v.token_kinds, v.ranges
    for t in toks:
        if t in skip:
            continue
        kind = kinds[t] if 0 <= t < len(kinds) else None
        if kind == "program":
            programs.append(t - r["program"].start)
        elif kind == "pitch":
            pitch = t - r["pitch"].start
        elif kind not in ("track", "position", "velocity"):  # no bar for them to belong to
            raise TokenizeError(f"unexpected token {v.describe(t)} while decoding")
    return programs, pitch


def _parse_bars(toks: list[int], v: Vocab, n_programs: int,
                pitch: int | None) -> tuple[list[int], list[int], list[_QNote]]:
    """The tokens from the first BAR on: per bar its time signature and tempo, and the notes
    (those of undeclared tracks dropped). PROGRAM tokens here are ignored, like BOS and PAD."""
    bar_sigs: list[int] = []
    bar_tempos: list[int] = []
    notes: list[_QNote] = []
    sig, tempo = v.time_signatures.index((4, 4)), tempo_bin(120.0, v.tempos_qpm)
    track = pos = 0
    vel = v.default_velocity_bin
    # one kind look-up per token and the named ids as locals: this loop runs for every
    # token of every take (prompt included), so attribute and range look-ups add up.
    # `sinks[track]` is where a note of that track goes: `notes`, or a list thrown away
    # for a track the head did not declare (no branch per note).
    skip, bar = frozenset((v.bos, v.pad, *v.ranges["program"])), v.bar
    kinds, start = v.token_kinds, {k: rg.start for k, rg in v.ranges.items()}
    sinks = [notes] * n_programs + [[]] * max(1, v.n_tracks - n_programs)
    sink = sinks[0]
    for t in toks:
        if t in skip:
            continue
        kind = kinds[t] if 0 <= t < len(kinds) else None
        if t == bar:
            bar_sigs.append(sig)
            bar_tempos.append(tempo)
            track, pos, vel, sink = 0, 0, v.default_velocity_bin, sinks[0]
        elif kind == "pitch":
            pitch = t - start["pitch"]
        elif kind == "duration" and pitch is not None:
            sink.append(_QNote(len(bar_sigs) - 1, pos, track, pitch, vel, t - start["duration"]))
            pitch = None
        elif kind == "position":
            pos = t - start["position"]
        elif kind == "velocity":
            vel = t - start["velocity"]
        elif kind == "track":
            track = t - start["track"]
            sink = sinks[track]
        elif kind == "timesig":
            sig = bar_sigs[-1] = t - start["timesig"]
        elif kind == "tempo":
            tempo = bar_tempos[-1] = t - start["tempo"]
        else:
            raise TokenizeError(f"unexpected token {v.describe(t)} while decoding")
    return bar_sigs, bar_tempos, notes


def to_clip(q: Quantized, v: Vocab, *, name: str = "") -> Clip:
    bar_start = [0]
    for s in q.bar_sigs:
        bar_start.append(bar_start[-1] + _bar_len(v, s) * GRID)
    per_track: list[list[Note]] = [[] for _ in q.programs]
    for n in q.notes:
        start = bar_start[n.bar] + n.position * GRID
        per_track[n.track].append(
            Note(n.pitch, v.velocity_of_bin(n.vel_bin), start, v.durations[n.dur_index] * GRID)
        )
    tracks = tuple(
        Track(tuple(sorted(ns, key=lambda x: (x.start_tick, x.pitch))),
              program=0 if p == DRUM_PROGRAM else p, is_drum=p == DRUM_PROGRAM)
        for p, ns in zip(q.programs, per_track)
    )
    sigs, tempos = [], []
    for b, (s, t) in enumerate(zip(q.bar_sigs, q.bar_tempos)):
        num, den = v.time_signatures[s]
        if not sigs or (sigs[-1].numerator, sigs[-1].denominator) != (num, den):
            sigs.append(TimeSignature(bar_start[b], num, den))
        if not tempos or tempos[-1].qpm != v.tempos_qpm[t]:
            tempos.append(TempoChange(bar_start[b], v.tempos_qpm[t]))
    return Clip(
        tracks=tracks,
        tempos=tuple(tempos) or (TempoChange(0, 120.0),),
        time_signatures=tuple(sigs) or (TimeSignature(0, 4, 4),),
        length_ticks=bar_start[-1],
        name=name,
    )
