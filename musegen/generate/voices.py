"""Voice leading, as the sampler sees it: which tracks are voices, their order and ranges
(`VoicePlan`, from the prompt or the style's real pieces), what each voice sounds at every
onset as a row draws (`Voices`), and the harmony tables of the chord-tone preference.

The constraint itself is `musegen.generate.constraints.VoiceLeading`; this module is pure
(no torch), so each rule can be read and tested alone:

* a voice sounds one note at a time (no overlap inside a voice);
* a voice stays inside its range and never crosses the voices above and below it;
* two voices never move into the same perfect fifth or octave they left (parallel or
  contrary consecutive perfect intervals);
* on a beat, pitch classes that make the sounding notes a plain triad or seventh chord are
  preferred (a bias);
* a voice present in the prompt sounds in every take, and never rests two bars running;
* a track that doubles a voice in the prompt (an instrument colla parte, at the unison or an
  octave: `musegen.evaluation.musicianship.doubles`) goes on doubling it: while its voice
  sounds it takes that voice's pitch (at the prompt's octave), and it is not a voice of its own
  for the crossing, parallel and chord rules (two voices squeezed between a doubled pair had
  only the unison left, and sang it in parallel).

The token stream writes the notes of one onset track by track (`codec.serialize`: position,
then each track's notes), so when a voice's pitch is drawn the voices written before it at
that onset are known, and the others still hold their earlier notes (or rest).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musegen.clip import Clip
from musegen.tokenizer.vocab import TICKS_PER_QUARTER, Vocab

MODES = ("auto", "on", "off")
STYLES = ("bach-chorale", "renaissance-mass", "madrigal")  # on by default (`auto`)
MIN_VOICES_AUTO = 3  # `auto`: a prompt with this many voices is voice-led whatever its style
OVERLAP_SHARE = 0.05  # a prompt track with more of its notes overlapping is not one voice
RANGE_MARGIN = 2  # semitones a voice may go past the prompt's (and the style's) range


# ------------------------------------------------------------------ harmony tables
def _chords() -> np.ndarray:
    """12-bit pitch-class sets of every plain triad (major, minor, diminished) and seventh
    chord (dominant, major, minor, half-diminished, diminished) on every root."""
    shapes = ((0, 4, 7), (0, 3, 7), (0, 3, 6),
              (0, 4, 7, 10), (0, 4, 7, 11), (0, 3, 7, 10), (0, 3, 6, 10), (0, 3, 6, 9))
    out = {sum(1 << ((root + i) % 12) for i in s) for s in shapes for root in range(12)}
    return np.array(sorted(out), dtype=np.int64)


CHORDS = _chords()
_SETS = np.arange(4096, dtype=np.int64)
IN_CHORD = ((_SETS[:, None] & ~CHORDS[None, :]) == 0).any(1)  # (4096,) a subset of a chord
IS_CHORD = np.isin(_SETS, CHORDS)  # (4096,) exactly a chord
_ADD = _SETS[:, None] | (1 << np.arange(12))[None, :]  # (4096, 12) the set with each class added
FITS = IN_CHORD[_ADD]  # (4096, 12): adding class c keeps the set inside some chord
COMPLETES = IS_CHORD[_ADD]  # (4096, 12): adding class c makes the set a whole chord


PITCHES = np.arange(128)
PITCH_CLASSES = PITCHES % 12


def pc_set(pitches: Sequence[int]) -> int:
    s = 0
    for p in pitches:
        s |= 1 << (p % 12)
    return s


def is_plain_chord(pitches: Sequence[int]) -> bool:
    """The pitch classes are exactly a triad or seventh chord (`CHORDS`)."""
    return bool(IS_CHORD[pc_set(pitches)])


def beat_ticks(num: int, den: int) -> int:
    """Grid ticks per beat: the denominator's note, or a dotted one in compound metres."""
    unit = TICKS_PER_QUARTER * 4 // den
    return 3 * unit if den == 8 and num % 3 == 0 and num > 3 else unit


FILE = "voices.json"  # next to the model: each style's voice counts and ranges


def load(model_dir: Path) -> dict[str, dict]:
    """A model's `voices.json` (`python -m musegen.corpus.voices` writes it); {} without one."""
    path = Path(model_dir) / FILE
    return json.loads(path.read_text()) if path.exists() else {}


# ------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class VoicePlan:
    """What the voice-leading constraint enforces for one request.

    `voices`: the tracks that are voices (None: every track of a header drawn from nothing);
    `order`: tracks from the highest voice to the lowest; `ranges`: each voice's (low, high).
    From nothing (`n_voices` set) the header gets `n_voices[0]..n_voices[1]` tracks and, once
    drawn, track i of n takes `ranges_by_count[n][i]` with tracks ordered as listed (highest
    first)."""

    voices: frozenset[int] | None = None
    order: tuple[int, ...] = ()
    ranges: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    n_voices: tuple[int, int] | None = None
    ranges_by_count: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    chord_bias: float = 2.0  # logits added to a chord tone on a beat (+ half again if it completes)
    entry_bias: float = 1.5  # logits added to the TRACK token of a voice silent for a bar
    present: bool = True  # continuing: every voice sounds in the take
    doubles: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # doubler -> (voice, semitones)

    def for_header(self, n_tracks: int) -> VoicePlan:
        """The plan once a header of `n_tracks` tracks is drawn from nothing."""
        if self.voices is not None:
            return self
        ranges = self.ranges_by_count.get(n_tracks)
        tracks = tuple(range(n_tracks))
        if ranges is None:
            return VoicePlan(frozenset(tracks), tracks, {}, chord_bias=self.chord_bias,
                             entry_bias=self.entry_bias, present=self.present)
        order = tuple(sorted(tracks, key=lambda t: -sum(ranges[t])))
        return VoicePlan(frozenset(tracks), order, dict(enumerate(ranges)),
                         chord_bias=self.chord_bias, entry_bias=self.entry_bias, present=self.present)


def dominant_style(style: object) -> str | None:
    """The style a request is mostly in: its name, or a blend's heaviest (half the weight at
    least); None otherwise."""
    if isinstance(style, str):
        return None if style == "none" else style
    if isinstance(style, Mapping) and style:
        name, w = max(style.items(), key=lambda kv: kv[1])
        total = sum(abs(x) for x in style.values())
        return str(name) if total and w / total >= 0.5 else None
    return None


def blend_ensemble(style: Mapping[str, float], style_data: Mapping[str, dict]
                   ) -> tuple[int, tuple[tuple[int, int], ...] | None]:
    """A blend from nothing: how many voices, and their ranges high to low (None: unknown).
    The count is the weights' mean of each style's commonest voice count (one for a style
    without a measured ensemble: the folk styles), rounded half up, so the weights move the
    texture step by step (chinese-folk -> bach-chorale at 0, .25, .5, .75, 1: 1, 2, 3, 3, 4
    voices) instead of flipping at half. The ranges are those the heaviest style that has
    that count measured; else the voices of the nearest larger count measured, spread from
    its top to its bottom (two voices: its outer ones)."""
    weights = {str(k): abs(float(w)) for k, w in style.items() if w}
    total = sum(weights.values())
    if not total:
        return 1, None

    def commonest(name: str) -> int:
        counts = {int(k): int(c) for k, c in style_data.get(name, {}).get("voices", {}).items()}
        return max(counts, key=lambda k: (counts[k], -k)) if counts else 1

    n = int(math.floor(sum(w * commonest(k) for k, w in weights.items()) / total + 0.5))
    by_weight = sorted(weights, key=lambda k: -weights[k])
    for name in by_weight:
        r = style_data.get(name, {}).get("ranges", {}).get(str(n))
        if r is not None:
            return n, tuple(tuple(x) for x in r)  # type: ignore[misc]
    for name in by_weight:
        ranges = style_data.get(name, {}).get("ranges", {})
        larger = sorted(int(k) for k in ranges if int(k) > n)
        if larger and n >= 1:
            full = [tuple(x) for x in ranges[str(larger[0])]]
            full.sort(key=lambda r: -sum(r))
            pick = np.linspace(0, len(full) - 1, n).round().astype(int) if n > 1 else [0]
            return n, tuple(full[i] for i in pick)  # type: ignore[misc]
    return n, None


def _is_voice(track: object) -> bool:
    """A pitched track that plays one note at a time (an empty one counts: it may enter)."""
    if track.is_drum:  # type: ignore[attr-defined]
        return False
    notes = track.notes  # type: ignore[attr-defined]
    if len(notes) < 2:
        return True
    overlaps = sum(1 for a, b in zip(notes, notes[1:]) if b.start_tick < a.end_tick - 1)
    return overlaps <= OVERLAP_SHARE * len(notes)


def plan(mode: str, style: object, clip: Clip | None, style_data: Mapping[str, dict], *,
         from_nothing: bool = False, tracks: frozenset[int] | None = None) -> VoicePlan | None:
    """The request's plan, or None when voice leading is off for it.

    `mode` "off": None; "on": always (when there are two voices to lead); "auto": for the
    multi-voice styles (`STYLES`) and for prompts with `MIN_VOICES_AUTO` voices or more.
    `clip` is the prompt (None from nothing: the style's measured ensemble, `style_data`,
    sets the number of voices and their ranges). `tracks`: only these may get notes."""
    if mode == "off":
        return None
    name = dominant_style(style)
    data = style_data.get(name or "", {})
    styled = name in STYLES
    if clip is None:
        if not from_nothing or (mode == "auto" and not styled):
            return None
        counts = {int(k): int(c) for k, c in data.get("voices", {}).items()}
        ranges = {int(k): tuple(tuple(r) for r in v) for k, v in data.get("ranges", {}).items()}
        n = _ensemble(counts)
        return VoicePlan(None, n_voices=n, ranges_by_count=ranges)  # type: ignore[arg-type]
    voices = [i for i, t in enumerate(clip.tracks) if _is_voice(t) and (tracks is None or i in tracks)]
    if len(voices) < 2 or (mode == "auto" and not styled and len(voices) < MIN_VOICES_AUTO):
        return None
    style_ranges = data.get("ranges", {}).get(str(len(clip.tracks)))
    doubled = doublings(clip, voices)
    order = tuple(t for t in _order(clip, voices) if t not in doubled)
    ranges = {}
    for t in voices:
        ps = [n.pitch for n in clip.tracks[t].notes]
        lo, hi = (min(ps), max(ps)) if ps else (None, None)
        if style_ranges is not None and len(style_ranges) == len(clip.tracks):
            slo, shi = style_ranges[t]
            lo, hi = (slo if lo is None else min(lo, slo)), (shi if hi is None else max(hi, shi))
        if lo is not None:
            ranges[t] = (max(0, lo - RANGE_MARGIN), min(127, hi + RANGE_MARGIN))
    return VoicePlan(frozenset(voices), order, ranges, doubles=doubled)


def doublings(clip: Clip, voices: Sequence[int]) -> dict[int, tuple[int, int]]:
    """The prompt's colla parte tracks: {doubler: (its voice, semitones above it)}. Of a pair
    where one doubles the other (`musicianship.doubles`), the later track is the doubler (an
    onset writes its tracks in order, so its voice's pitch is known when its own is drawn);
    the interval is the commonest at the moments both sound, to the octave."""
    from musegen.evaluation.musicianship import MOMENT_TICKS, doubles, sounding

    out: dict[int, tuple[int, int]] = {}
    for j in voices:
        for i in voices:
            if i >= j or i in out or len(clip.tracks[i].notes) < 2 or len(clip.tracks[j].notes) < 2:
                continue
            a, b = clip.tracks[i], clip.tracks[j]
            if doubles(a, b, clip.length_ticks):
                gaps = [pb - pa for t in range(0, clip.length_ticks, MOMENT_TICKS)
                        if (pa := sounding(a, t)) is not None and (pb := sounding(b, t)) is not None
                        and (pb - pa) % 12 == 0]
                out[j] = (i, max(set(gaps), key=gaps.count) if gaps else 0)
                break
    return out


def _ensemble(counts: Mapping[int, int]) -> tuple[int, int] | None:
    """From nothing: the voice counts of a style's real pieces that at least a tenth of them
    have (bach-chorale: 4; renaissance-mass: 4..6), as (fewest, most)."""
    if not counts:
        return None
    total = sum(counts.values())
    common = [n for n, c in counts.items() if c >= 0.1 * total and n >= 2]
    return (min(common), max(common)) if common else None


def _order(clip: Clip, voices: Sequence[int]) -> tuple[int, ...]:
    """The voices from highest to lowest: by mean pitch; a voice without notes keeps its place
    in the score order (which runs top-down or bottom-up as the sounding voices show)."""
    means = {t: float(np.mean([n.pitch for n in clip.tracks[t].notes]))
             for t in voices if clip.tracks[t].notes}
    if not means:
        return tuple(voices)
    by_index = sorted(means)
    top_down = len(by_index) < 2 or means[by_index[0]] >= means[by_index[-1]]
    index_order = list(voices) if top_down else list(reversed(voices))
    sounding = iter(sorted(means, key=lambda t: -means[t]))
    # the sounding voices sorted by pitch, the silent ones where the score order puts them
    return tuple(t if t not in means else next(sounding) for t in index_order)


# ------------------------------------------------------------------ what each row sounds
@dataclass
class Note:
    pitch: int
    onset: int  # grid ticks from the walk's start
    end: int


class Voices:
    """One row's notes as it draws: the last two notes of each track, where the bar is, and
    when each voice last sounded. `take(token)` follows the token stream (the grammar has
    already checked it); ticks count from the first bar walked."""

    def __init__(self, vocab: Vocab) -> None:
        self.v = vocab
        r = vocab.ranges
        self._pitch, self._dur, self._pos = r["pitch"], r["duration"], r["position"]
        self._track, self._sig = r["track"], r["timesig"]
        self.bar_start = 0
        self.bar_len = 4 * TICKS_PER_QUARTER
        self.beat = TICKS_PER_QUARTER
        self.bars = 0
        self.position = 0
        self.track = 0
        self.pitch: int | None = None
        self.notes: dict[int, list[Note]] = {}  # track -> its last two notes
        self.heard: dict[int, int] = {}  # track -> end of its last note
        self.skip = False  # inside a fill-in-the-middle suffix: not the music that follows
        self.suffix_bar = (0, 0, 0)  # bar start, length, count at FILL (the middle goes on there)
        self.in_head = True
        self.take_start: int | None = None
        self.onsets_in_take: set[int] = set()

    def copy(self) -> Voices:
        out = Voices.__new__(Voices)
        out.__dict__.update(self.__dict__)
        out.notes = {t: list(ns) for t, ns in self.notes.items()}
        out.heard = dict(self.heard)
        out.onsets_in_take = set(self.onsets_in_take)
        return out

    def with_notes(self, extra: Sequence[tuple[int, Note]]) -> Voices:
        """A view with `extra` (track, note) struck as well (arrange's kept notes, known before
        the token stream reaches them); this one is left as it is."""
        out = Voices.__new__(Voices)
        out.__dict__.update(self.__dict__)
        out.notes = dict(self.notes)
        for t, n in extra:
            out.notes[t] = [*out.notes.get(t, ())[-1:], n]
        return out

    @property
    def onset(self) -> int:
        return self.bar_start + self.position

    def start_take(self) -> None:
        """What follows is the take (its onsets are what `present` asks for)."""
        self.take_start = self.onset

    def take(self, t: int) -> None:
        v = self.v
        kind = v.token_kinds[t]
        if kind == "special":
            if t == v.fill:
                self.skip, self.suffix_bar = True, (self.bar_start, self.bar_len, self.bars)
            elif t == v.fill_start:  # the middle follows the prefix
                self.skip = False
                self.bar_start, self.bar_len, self.bars = self.suffix_bar
            elif t == v.bar and not self.skip:
                if not self.in_head or self.bars:
                    self.bar_start += self.bar_len
                self.in_head = False
                self.bars += 1
                self.position, self.track, self.pitch = 0, 0, None
            return
        if self.skip:
            return
        if kind == "timesig":
            num, den = v.time_signatures[t - self._sig.start]
            self.bar_len = TICKS_PER_QUARTER * 4 * num // den
            self.beat = beat_ticks(num, den)
        elif self.in_head:
            return
        elif kind == "position":
            self.position = t - self._pos.start
        elif kind == "track":
            self.track = t - self._track.start
        elif kind == "pitch":
            self.pitch = t - self._pitch.start
        elif kind == "duration" and self.pitch is not None:
            onset = self.onset
            n = Note(self.pitch, onset, onset + v.durations[t - self._dur.start])
            ns = self.notes.setdefault(self.track, [])
            ns.append(n)
            if len(ns) > 2:
                del ns[0]
            self.heard[self.track] = max(self.heard.get(self.track, 0), n.end)
            if self.take_start is not None and onset >= self.take_start:
                self.onsets_in_take.add(self.track)
            self.pitch = None

    # what the rules ask --------------------------------------------------------
    def sounding(self, track: int, at: int) -> Note | None:
        """The note `track` sounds at tick `at` (its latest: a voice has one)."""
        for n in reversed(self.notes.get(track, ())):
            if n.onset <= at < n.end:
                return n
        return None

    def busy(self, track: int, at: int) -> bool:
        ns = self.notes.get(track)
        return bool(ns) and ns[-1].end > at

    def moved(self, track: int, at: int) -> tuple[int, int] | None:
        """(pitch before, pitch now) of a track that struck a new note at `at`."""
        ns = self.notes.get(track, ())
        if len(ns) == 2 and ns[1].onset == at and ns[0].onset < at:
            return ns[0].pitch, ns[1].pitch
        return None

    def previous(self, track: int, at: int) -> int | None:
        """The pitch of the track's last note before `at`."""
        for n in reversed(self.notes.get(track, ())):
            if n.onset < at:
                return n.pitch
        return None


def pitch_window(p: VoicePlan, vs: Voices, track: int, at: int
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """(allowed, preferred): (128,) bool pitches the voice `track` may take at tick `at`, and
    (128,) float logits to add (`chord_bias`, None: nothing). Narrowed rule by rule; a rule that would leave no pitch is
    dropped (the crossing rule first, then parallels, then the range), so `allowed` is never
    empty."""
    pitch = np.arange(128)
    if track in p.doubles:
        return _colla_parte(p, vs, track, at), None
    above = [vs.sounding(u, at) for u in p.order[:p.order.index(track)]] if track in p.order else []
    below = [vs.sounding(u, at) for u in p.order[p.order.index(track) + 1:]] if track in p.order else []
    lo = max([n.pitch for n in below if n is not None], default=0)
    hi = min([n.pitch for n in above if n is not None], default=127)
    cross = (pitch >= lo) & (pitch <= hi)
    if not cross.any():
        cross[:] = True
    in_range = _in_range(p, track)
    rng = cross & in_range
    if not rng.any():
        rng = cross
    par = _parallels(p, vs, track, at)
    allowed = rng & ~par
    if not allowed.any():  # squeezed (its neighbours in unison): cross rather than move in parallel
        wide = in_range & ~par
        allowed = wide if wide.any() else rng
    return allowed, chord_bias(p, vs, track, at)


def _in_range(p: VoicePlan, track: int) -> np.ndarray:
    """(128,) bool: the pitches of the voice's range (every pitch without one)."""
    out = np.ones(128, dtype=bool)
    if track in p.ranges:
        a, b = p.ranges[track]
        out[:a] = out[b + 1:] = False
    return out


def voice_struck(p: VoicePlan, vs: Voices, track: int, at: int) -> bool:
    """Whether `track` doubles a voice that struck a note at `at` (so it should too)."""
    if track not in p.doubles:
        return False
    ns = vs.notes.get(p.doubles[track][0])
    return bool(ns) and ns[-1].onset == at


def _colla_parte(p: VoicePlan, vs: Voices, track: int, at: int) -> np.ndarray:
    """A doubler's pitches: its voice's, at the prompt's interval, while the voice sounds;
    else its range, clear of parallels with the voices."""
    voice, gap = p.doubles[track]
    n = vs.sounding(voice, at)
    out = np.zeros(128, dtype=bool)
    if n is not None and 0 <= n.pitch + gap < 128:
        out[n.pitch + gap] = True
        return out
    out = _in_range(p, track)
    free = out & ~_parallels(p, vs, track, at)
    return free if free.any() else out


def chord_bias(p: VoicePlan, vs: Voices, track: int, at: int) -> np.ndarray | None:
    """(128,) logits to add on a beat: `chord_bias` to the pitches whose class keeps the other
    voices' sounding notes inside a plain triad or seventh chord, half again to those that
    make it a whole one; None off the beat or with nothing sounding."""
    if not p.chord_bias or (at - vs.bar_start) % vs.beat:
        return None
    others = [vs.sounding(u, at) for u in p.order if u != track]
    s = pc_set([n.pitch for n in others if n is not None])
    if not s:
        return None
    per_class = p.chord_bias * (FITS[s] + 0.5 * COMPLETES[s])
    return per_class.astype(np.float32)[PITCH_CLASSES]


def _parallels(p: VoicePlan, vs: Voices, track: int, at: int) -> np.ndarray:
    """(128,) the pitches that would make consecutive perfect fifths or octaves (unisons)
    with a voice that moved at this onset: both voices leave a perfect interval for the same
    one, each by a real move."""
    out = np.zeros(128, dtype=bool)
    mine = vs.previous(track, at)
    if mine is None:
        return out
    pitch = PITCHES
    for u in p.order:
        if u == track:
            continue
        m = vs.moved(u, at)
        if m is None:
            continue
        before, now = m
        iv = abs(mine - before) % 12
        if iv not in (0, 7) or before == now:
            continue
        out |= (np.abs(pitch - now) % 12 == iv) & (pitch != mine)
    return out


def is_silent_too_long(p: VoicePlan, vs: Voices, track: int, closing_last: bool) -> bool:
    """Closing the bar now would leave voice `track` silent two bars running (or, at the end
    of a take that asks `present`, silent through the whole take)."""
    end = vs.bar_start + vs.bar_len
    if vs.heard.get(track, -1) <= end - 2 * vs.bar_len:
        return True
    return closing_last and p.present and vs.take_start is not None and track not in vs.onsets_in_take
