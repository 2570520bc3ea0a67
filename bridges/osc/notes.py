"""Clips as OSC note messages, both ways, for hosts that can't read files.

    /musegen/clip/begin id take_id n_notes n_bars tempo time_signature      (server -> client)
    /musegen/clip/begin id [name N] [tempo T] [time_signature 3/4]            (client -> server)
    /musegen/note id pitch velocity start_beats duration_beats track [syllable]   (both ways)
    /musegen/clip/end id [take_id]

`clip_messages` turns a clip into that sequence; `ClipAssembler` collects incoming notes per
(client, request id) and builds a `Clip` at `clip/end` (the client: `OscServer.client_of`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bridges.osc.protocol import Limits, ProtocolError
from musegen.clip import PPQ, Clip, Note, TempoChange, TimeSignature, Track

STREAM_TIMEOUT_S = 600.0  # a clip not ended within this is dropped


def clip_messages(rid: int | str, take_id: str, clip: Clip) -> list[tuple[str, list]]:
    """The messages that stream `clip` to a client, in order."""
    ts = clip.time_signatures[0]
    notes = [(ti, n) for ti, t in enumerate(clip.tracks) for n in t.notes]
    notes.sort(key=lambda x: (x[1].start_tick, x[0], x[1].pitch))
    out: list[tuple[str, list]] = [("/musegen/clip/begin", [rid, take_id, len(notes), clip.n_bars,
                                                            float(clip.tempos[0].qpm),
                                                            f"{ts.numerator}/{ts.denominator}"])]
    for ti, n in notes:  # a sung syllable (a lyric event on the note) comes as a 7th argument
        out.append(("/musegen/note", [rid, n.pitch, n.velocity, n.start_beats, n.duration_beats,
                                      ti, *([n.lyric] if n.lyric else [])]))
    out.append(("/musegen/clip/end", [rid, take_id]))
    return out


@dataclass
class _Stream:
    params: dict
    started_s: float
    notes: list[dict] = field(default_factory=list)


class ClipAssembler:
    """Incoming clips under construction, keyed by (client, request id): a client is a
    (host, port) pair, so two clients streaming under the same id get two clips. Not
    thread-safe: only the listener thread uses it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._open: dict[tuple[object, int | str], _Stream] = {}

    def begin(self, key: tuple[object, int | str], params: dict, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for k in [k for k, s in self._open.items() if now - s.started_s > STREAM_TIMEOUT_S]:
            del self._open[k]
        if key in self._open:  # a second clip under an open one's id would merge with it
            raise ProtocolError(f"clip {key[1]!r} is already being streamed by this client; "
                                f"end it with /musegen/clip/end or use a new id", "duplicate_id")
        if key not in self._open and len(self._open) >= self.limits.max_open_streams:
            raise ProtocolError(f"too many clips being streamed at once "
                                f"(limit {self.limits.max_open_streams}); end one first")
        self._open[key] = _Stream(params, now)

    def add(self, key: tuple[object, int | str], note: dict) -> None:
        s = self._open.get(key)
        if s is None:
            raise ProtocolError(f"/musegen/note for request {key[1]!r} without "
                                f"/musegen/clip/begin first")
        if len(s.notes) >= self.limits.max_notes:
            del self._open[key]
            raise ProtocolError(f"clip {key[1]!r} has more than {self.limits.max_notes} notes; "
                                f"dropped")
        s.notes.append(note)

    def end(self, key: tuple[object, int | str]) -> Clip:
        s = self._open.pop(key, None)
        if s is None:
            raise ProtocolError(f"/musegen/clip/end for request {key[1]!r} without "
                                f"/musegen/clip/begin first")
        if not s.notes:
            raise ProtocolError(f"clip {key[1]!r} has no notes")
        return build_clip(s.notes, s.params)

    @property
    def open_count(self) -> int:
        return len(self._open)


def build_clip(notes: list[dict], params: dict) -> Clip:
    """Notes in beats (as `/musegen/note` carries them) -> a clip at `PPQ` ticks per beat."""
    by_track: dict[int, list[Note]] = {}
    for n in notes:
        start = int(round(n["start_beats"] * PPQ))
        dur = max(1, int(round(n["duration_beats"] * PPQ)))
        by_track.setdefault(n["track"], []).append(Note(n["pitch"], n["velocity"], start, dur,
                                                        n.get("lyric")))
    tracks = tuple(Track(tuple(sorted(v, key=lambda x: (x.start_tick, x.pitch))))
                   for _, v in sorted(by_track.items()))
    num, den = params.get("time_signature", (4, 4))
    return Clip(tracks=tracks, tempos=(TempoChange(0, float(params.get("tempo", 120.0))),),
                time_signatures=(TimeSignature(0, num, den),), name=params.get("name", "streamed"))
