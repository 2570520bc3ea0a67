"""What the musician gave comes back exactly.

The model reads and writes a binned tempo (there is no 120 bpm token), time signatures from
its vocabulary and nameless tracks. A take is built from tokens, so left alone it would change
a DAW project's tempo at the seam (120 -> 123.03 bpm), drop key signatures and track names, and
move tracks to other channels. These pure functions put the prompt's own tempo map, time
signatures, key signatures, track names, programs and channels onto a take, and splice a
regenerated bar range into the untouched original.
"""

from __future__ import annotations

import bisect
from dataclasses import replace

from musegen.clip import Clip, KeySignature, Note, TempoChange, Track, window_events


def token_tracks(clip: Clip) -> list[Track]:
    """The tracks the tokenizer encodes, in token order (track i of a take is this list's i):
    the tracks with notes, or the first track of a silent clip."""
    return [t for t in clip.tracks if t.notes] or list(clip.tracks[:1])


def carry(take: Clip, source: Clip | None, *, at_tick: int = 0, tempo: float | None = None,
          key: str | None = None, lock_first: bool = True) -> Clip:
    """`take` with the metadata the musician gave.

    `source` is the clip the take continues (`at_tick`: where the take's tick 0 lies in the
    source, its end for a continuation) or rewrites (`at_tick=0`); None from nothing, where
    `tempo` is the requested tempo, written exactly. Tempo map, time signatures (when they give
    the take's own bar grid), track names, programs, channels and the clip's name come from the
    source. The key signature: with `lock_first` (new material) the key lock `key`, else the
    source's signatures in force, else `key`, else the source's estimated key, else the take's
    estimate; every take carries one.
    """
    if source is None:
        tempos = (TempoChange(0, float(tempo)),) if tempo is not None else take.tempos
        keys = _keys(take, None, (), key, lock_first)
        return replace(take, tempos=tempos, key=None, key_signatures=keys)
    end = at_tick + take.length_ticks
    tempos = window_events(source.tempos, at_tick, end, TempoChange(0, source.tempo_at(at_tick)))
    ks = source.key_signature_at(at_tick)
    given_keys = window_events(source.key_signatures, at_tick, end, replace(ks, tick=0) if ks is not None else None)
    return replace(take, tracks=_tracks(take, source), tempos=tempos, name=source.name or take.name,
                   time_signatures=_time_signatures(take, source, at_tick, end), key=None,
                   key_signatures=_keys(take, source, given_keys, key, lock_first))


def _time_signatures(take: Clip, source: Clip, at_tick: int, end: int) -> tuple:
    """The source's signatures over the take's span, when they give the take's own bar grid."""
    cand = window_events(source.time_signatures, at_tick, end, replace(source.time_signature_at(at_tick), tick=0))
    same_grid = Clip(tracks=(), time_signatures=cand, length_ticks=take.length_ticks).bar_starts == take.bar_starts
    return cand if same_grid else take.time_signatures


def _tracks(take: Clip, source: Clip) -> tuple:
    """Take track i named, programmed and channelled as the source's token track i."""
    src = token_tracks(source)
    return tuple(replace(t, name=src[i].name, program=src[i].program, channel=src[i].channel,
                         is_drum=src[i].is_drum) if i < len(src) else t
                 for i, t in enumerate(take.tracks))


def _keys(take: Clip, source: Clip | None, given: tuple, key: str | None, lock_first: bool) -> tuple:
    """The key signatures a take carries (see `carry`): never none."""
    if key is not None and (lock_first or not given or given[0].tick > 0):
        return (KeySignature.of(key), *(k for k in given if k.tick > 0 and not lock_first))
    if given and given[0].tick == 0:
        return given
    has_notes = source is not None and any(t.notes and not t.is_drum for t in source.tracks)
    fallback = source.key if has_notes else take.key  # type: ignore[union-attr]
    return ((KeySignature.of(fallback, as_spelled=False),) if fallback else ()) + given


def splice(source: Clip, decoded: Clip, lo_tick: int, hi_tick: int, *, offset_ticks: int = 0) -> Clip:
    """The source with the notes starting in [lo_tick, hi_tick) replaced by `decoded`'s notes
    there; every other note, velocity, lyric and event of the source exactly as it was (its
    own note objects: cheap for a huge clip), and its length: a new note ringing past the last
    bar line is cut there. `decoded` is the tokens of a window of the source
    starting at `offset_ticks` (its track i is the source's token track i)."""
    src = token_tracks(source)
    end = source.bar_starts[-1]  # a regenerated note held past the clip's last bar line is cut
    new_of = {id(t): decoded.tracks[i] for i, t in enumerate(src) if i < len(decoded.tracks)}
    tracks = []
    for t in source.tracks:
        gen = new_of.get(id(t))
        # notes are sorted by onset: the region is one slice of each track
        a = bisect.bisect_left(t.notes, lo_tick, key=_onset)
        b = bisect.bisect_left(t.notes, hi_tick, key=_onset)
        mid = () if gen is None else tuple(
            replace(n, start_tick=n.start_tick + offset_ticks,
                    duration_ticks=min(n.duration_ticks, end - n.start_tick - offset_ticks))
            for n in gen.notes if lo_tick <= n.start_tick + offset_ticks < hi_tick)
        tracks.append(replace(t, notes=t.notes[:a] + mid + t.notes[b:]))
    return replace(source, tracks=tuple(tracks))


def _onset(n: Note) -> int:
    return n.start_tick


__all__ = ["carry", "splice", "token_tracks"]
