"""A melody for lyrics: one note per syllable, stressed syllables on the beats, phrase ends at
line ends, pitches chosen by the music model.

    >>> takes = studio.melody_for("Down by the river where the cold wind blows", style="irish-dance")
    >>> takes[0].save("song.mid")           # MIDI with one lyric event per note, + a JSON sidecar

How it works:

1. **Lines.** The text is split into lines (newlines or "/"; a single line of more than
   `LONG_LINE` syllables is split after sentence punctuation). Each line is one phrase and
   each line's syllables and stresses come from `musegen.lyrics.syllables`.
2. **A rhythm plan per line** (`plan_line`): onsets on an eighth-note grid found by dynamic
   programming over (syllable, onset) pairs. Costs: a stressed syllable off the beat (by how
   prominent it is: the primary stress of a long word most, a stressed monosyllabic function
   word least), a primary stress on a weak beat rather than a strong one, an unstressed
   syllable on a strong beat, note lengths other than one or two eighths, syncopation, a long
   rest before the line. The line's last syllable is held to the end of the phrase; each line
   spans a whole number of bars (2 bars where the line fits, else 4, else 8 in 4/4) and the
   next line starts on a bar line, so phrase ends are line ends.
3. **Pitches from the model.** The plan becomes a clip with placeholder pitches, the clip is
   encoded, and the sampler's keep-rhythm *template* fixes every token (bars, positions,
   velocities, durations) except the pitches, which the model chooses under the style, seed,
   temperature, top-p, key/scale lock and pitch range like every other Studio operation.
   Stressed syllables get a slightly louder velocity, so the accent is heard.
4. **Lyrics.** Each note gets its syllable as a MIDI lyric event ("won-", "der-", "ful"), so
   `take.save(path)` writes a file that pretty_midi, mido and MuseScore show with words.

Every note carries exactly one syllable: melismas are never generated (the figures count them
anyway, as notes beyond one per syllable, so a future change that adds them is measured).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from musegen import params as P
from musegen.carry import carry
from musegen.clip import PPQ, Clip, Note, TempoChange, TimeSignature, Track
from musegen.errors import ParameterError
from musegen.lyrics.syllables import _WORD_RE, Syllable, is_function_word, syllables, to_lyric_events
from musegen.params import MAX_BARS, MELODY_METRES, check, default
from musegen.tokenizer.codec import GRID
from musegen.tokenizer.vocab import DURATIONS

if TYPE_CHECKING:
    from musegen.generate.run import Engine
    from musegen.take import Take

__all__ = [
    "LinePlan",
    "MelodyPlan",
    "METRES",
    "melody_figures",
    "melody_for",
    "plan_line",
    "plan_melody",
    "rhythm_clip",
    "split_lines",
]

MAX_LINES = 64
MAX_LINE_SYLLABLES = 32
LONG_LINE = 16  # a single line longer than this is split after sentence punctuation
SLOT_TICKS = PPQ // 2  # the plan's grid: eighth notes
# the melody's defaults, from the parameter table (musegen.params)
DEFAULT_TEMPO: float = default("melody", "tempo")  # type: ignore[assignment]
DEFAULT_PITCH_RANGE: tuple[int, int] = default("melody", "pitch_range")  # type: ignore[assignment]  # C4..D5
DEFAULT_MAX_LEAP: int = default("melody", "max_leap")  # type: ignore[assignment]  # no leap past an octave

# Metrical weight of each eighth of the bar: 3 downbeat, 2 other strong beat, 1 beat, 0 off.
METRES: dict[tuple[int, int], tuple[int, ...]] = {
    (4, 4): (3, 0, 1, 0, 2, 0, 1, 0),
    (3, 4): (3, 0, 1, 0, 1, 0),
    (6, 8): (3, 0, 0, 2, 0, 0),
    (2, 4): (3, 0, 1, 0),
}
assert tuple(METRES) == MELODY_METRES  # the parameter table's metres for melodies
# Phrase lengths in bars a line may take, shortest first (a phrase of 2 bars of 4/4 = 16 eighths).
_PHRASE_BARS = {(4, 4): (2, 4, 8), (3, 4): (2, 4, 8), (6, 8): (2, 4, 8), (2, 4): (4, 8, 16)}
_BAR_COST = 0.3  # per bar of phrase: the shortest phrase that sets the line well wins
_VELOCITY_STRESSED, _VELOCITY_PLAIN = 104, 88

_PAUSE_RE = re.compile(r"^[^\w']*[,;:.!?\u2014\u2013-]")  # punctuation right after a word


# ------------------------------------------------------------------ text -> lines
def split_lines(text: str) -> list[str]:
    """The lines (phrases) of a lyric: one per text line or "/"-separated part; a single line
    of more than `LONG_LINE` syllables is split after sentence punctuation (. ! ? ; :).
    Raises `ParameterError` for empty text, more than `MAX_LINES` lines or a line of more than
    `MAX_LINE_SYLLABLES` syllables."""
    if not isinstance(text, str):
        raise ParameterError(f"text must be a string, got {type(text).__name__}")
    parts = [p.strip() for chunk in text.splitlines() for p in chunk.split("/")]
    lines = [p for p in parts if _WORD_RE.search(p.replace("\u2019", "'"))]
    if not lines:
        raise ParameterError(f"text has no words to sing: {text[:60]!r}")
    if len(lines) == 1 and len(_line_syllables(lines[0])) > LONG_LINE:
        pieces = [p.strip() for p in re.split(r"(?<=[.!?;:])\s+", lines[0])]
        lines = [p for p in pieces if _WORD_RE.search(p.replace("\u2019", "'"))]
    if len(lines) > MAX_LINES:
        raise ParameterError(f"text has {len(lines)} lines; at most {MAX_LINES} per request")
    for i, line in enumerate(lines):
        n = len(_line_syllables(line))
        if n > MAX_LINE_SYLLABLES:
            raise ParameterError(
                f"line {i + 1} has {n} syllables (at most {MAX_LINE_SYLLABLES}): {line[:60]!r}; "
                "split it with a newline or '/'")
    return lines


def stanza_ends(text: str, lines: list[str]) -> list[bool]:
    """Per line of `split_lines(text)`: does it end a stanza (a blank line or the text's end
    follows it)."""
    blocks = [b for b in re.split(r"\n[ \t]*\n", text) if _WORD_RE.search(b.replace("\u2019", "'"))]
    try:
        counts = [len(split_lines(b)) for b in blocks]
    except ParameterError:
        counts = []
    if sum(counts) != len(lines):  # a single long line split at punctuation: one stanza
        return [i == len(lines) - 1 for i in range(len(lines))]
    out = []
    for c in counts:
        out += [False] * (c - 1) + [True]
    return out


def _line_syllables(line: str) -> list[tuple[Syllable, bool, bool]]:
    """(syllable, is a function word, a pause (punctuation) follows it) for a line."""
    text = line.replace("\u2019", "'")
    out = []
    for m in _WORD_RE.finditer(text):
        word = m.group(0)
        syls = syllables(word)
        func = is_function_word(word, len(syls))
        pause = bool(_PAUSE_RE.match(text[m.end():]))
        for k, s in enumerate(syls):
            out.append((s, func, pause and k == len(syls) - 1))
    return out


# ------------------------------------------------------------------ rhythm plan
@dataclass(frozen=True)
class LinePlan:
    """The rhythm of one line: onsets and lengths in eighths from the phrase's first bar line."""

    text: str
    syllables: tuple[Syllable, ...]
    bars: int
    onsets: tuple[int, ...]  # a pickup's onsets are negative: before the phrase's first bar line
    durations: tuple[int, ...]
    cost: float = field(default=0.0, compare=False)

    @property
    def pickup(self) -> int:
        """Syllables sung before the first bar line (the unstressed opening)."""
        return sum(1 for o in self.onsets if o < 0)


@dataclass(frozen=True)
class MelodyPlan:
    """The rhythm of a whole lyric: its lines, one after another, each starting on a bar line."""

    time_signature: tuple[int, int]
    lines: tuple[LinePlan, ...]
    lead_in: int = 0  # bars before the first line's bar: 1 when its unstressed opening is a pickup
    stanza_ends: tuple[bool, ...] = ()  # per line: does it end a stanza (default: only the last)

    @property
    def slots_per_bar(self) -> int:
        return len(METRES[self.time_signature])

    @property
    def bars(self) -> int:
        return self.lead_in + sum(ln.bars for ln in self.lines)

    def ends_stanza(self, i: int) -> bool:
        return self.stanza_ends[i] if self.stanza_ends else i == len(self.lines) - 1

    @property
    def n_syllables(self) -> int:
        return sum(len(ln.syllables) for ln in self.lines)

    def notes(self) -> list[tuple[int, int, Syllable, int]]:
        """(start tick, length in ticks, syllable, line index) of every planned note."""
        out, bar0 = [], self.lead_in
        for i, ln in enumerate(self.lines):
            base = bar0 * self.slots_per_bar * SLOT_TICKS
            for s, on, d in zip(ln.syllables, ln.onsets, ln.durations):
                out.append((base + on * SLOT_TICKS, d * SLOT_TICKS, s, i))
            bar0 += ln.bars
        return out

    def to_dict(self) -> dict:
        num, den = self.time_signature
        return {"time_signature": f"{num}/{den}", "grid": "eighth", "bars": self.bars,
                "lead_in_bars": self.lead_in,
                "lines": [{"text": ln.text, "bars": ln.bars, "pickup": ln.pickup,
                           "ends_stanza": self.ends_stanza(i),
                           "syllables": to_lyric_events(list(ln.syllables)),
                           "stress": "".join(str(s.stress) for s in ln.syllables),
                           "onsets": list(ln.onsets), "durations": list(ln.durations)}
                          for i, ln in enumerate(self.lines)]}


def parse_time_signature(ts: object) -> tuple[int, int]:
    """(4, 4), [3, 4] or "6/8" -> a supported metre; `ParameterError` otherwise (the parameter
    table's check for a melody's time signature)."""
    return P.TimeSignature(MELODY_METRES).check("time_signature", ts)


def _prominence(s: Syllable, func: bool) -> float:
    """How much a syllable wants a beat: 3 the primary stress of a word of 2+ syllables,
    2 a stressed content monosyllable, 1 a secondary stress or stressed function word, 0 none."""
    if s.stress == 0:
        return 0.0
    if not (s.is_first and s.is_last):
        return 3.0 if s.stress == 1 else 1.0
    return 1.0 if func else 2.0


def _place_cost(p: float, func: bool, w: int) -> float:
    if p > 0:
        if w == 0:
            return 1.0 * p
        return 0.25 * (p - 1) if w == 1 else 0.0  # primary stresses prefer the strong beats
    if w >= 2:
        return 0.5 if func else 1.0
    return (0.1 if func else 0.25) if w == 1 else 0.0


def _dur_cost(weights: tuple[int, ...], on: int, d: int, pause: bool) -> float:
    spb = len(weights)
    base = {1: 0.0, 2: 0.05, 3: 0.45, 4: 0.7}[d]
    if weights == METRES[(6, 8)] and d in (2, 3):  # 6/8: quarter-eighth and dotted quarter
        base = 0.1
    if pause:
        base -= 0.2 if d == 1 else 0.5  # a comma likes a longer note
    if weights[on % spb] == 0 and any(weights[(on + k) % spb] >= 1 for k in range(1, d)):
        base += 0.6  # syncopation: an offbeat note held over a beat
    return base


MAX_PICKUP = 3


def pickup_count(syls: list[tuple[Syllable, bool, bool]], spb: int = 8) -> int:
    """How many opening syllables are unstressed (no stress, or a one-syllable function word:
    "I", "That", "When the"): they are sung as a pickup before the bar line, so the first stress
    takes the downbeat. At most MAX_PICKUP, and never the whole line."""
    k = 0
    for s, func, _ in syls:
        if _prominence(s, func) > 1.0 or (s.stress >= 1 and not func):
            break
        k += 1
    return max(0, min(k, MAX_PICKUP, len(syls) - 1, spb - 2))


def plan_line(line: str | list[tuple[Syllable, bool, bool]], time_signature: object = (4, 4),
              bars: int | None = None, *, seed: int | None = None, noise: float = 0.5,
              pickup: bool = True, reserve: int = 0, final: bool = False) -> LinePlan:
    """The best rhythm for one line (see the module doc). `bars` forces the phrase length;
    `seed` perturbs the costs (a seeded variation: another good plan, not the best one).
    `pickup`: the unstressed opening (`pickup_count`) goes before the bar line, one eighth each,
    and the first stress on the downbeat; `reserve`: eighths left free at the phrase end (the next
    line's pickup); `final`: the line ends a stanza, so its last note is held at least a half bar."""
    ts = parse_time_signature(time_signature)
    syls = _line_syllables(line) if isinstance(line, str) else list(line)
    text = line if isinstance(line, str) else " ".join(s.text for s, _, _ in syls)
    n = len(syls)
    if n == 0:
        raise ParameterError(f"line has no words to sing: {text!r}")
    if n > MAX_LINE_SYLLABLES:
        raise ParameterError(f"line has {n} syllables (at most {MAX_LINE_SYLLABLES}): {text[:60]!r}")
    weights = METRES[ts]
    options = _PHRASE_BARS[ts]
    if bars is not None:
        if not isinstance(bars, int) or not 1 <= bars <= 16:
            raise ParameterError(f"bars_per_line must be an integer in 1..16, got {bars!r}")
        options = (bars,)
    rng = np.random.default_rng(seed) if seed is not None else None
    best: LinePlan | None = None
    k = pickup_count(syls, len(weights)) if pickup else 0
    for b in options:
        plan = _dp(syls, text, weights, b, rng, noise, k, reserve, final)
        if plan is not None and (best is None or plan.cost + _BAR_COST * b < best.cost + _BAR_COST * best.bars):
            best = plan
    if best is None:
        raise ParameterError(f"line of {n} syllables does not fit in {bars} bar(s) of {ts[0]}/{ts[1]}")
    return best


def _dp(syls: list[tuple[Syllable, bool, bool]], text: str, weights: tuple[int, ...], bars: int,
        rng: np.random.Generator | None, noise: float, pickup: int = 0, reserve: int = 0,
        final: bool = False) -> LinePlan | None:
    """The cheapest onsets for a line's syllables in `bars` bars (None if they do not fit):
    dynamic programming over (syllable, onset slot) pairs, then back along the best path. The
    first `pickup` syllables go on the eighths before the bar line; the rest start on it."""
    spb = len(weights)
    main = syls[pickup:]
    n, length = len(main), bars * spb - reserve
    if n > length - 1:  # every syllable at least an eighth, the last at least a quarter
        return None
    jitter = rng.uniform(0, noise, (n, length)) if rng is not None else np.zeros((n, length))
    place = np.array([[_place_cost(_prominence(s, f), f, weights[t % spb]) for t in range(length)]
                      for s, f, _ in main]) + jitter
    cost, back = _dp_table(main, weights, place, first_at_downbeat=pickup > 0)
    ends = _end_costs(cost[n - 1], spb, final)
    last = int(np.argmin(ends))
    if ends[last] == _INF:
        return None
    onsets = [-pickup + j for j in range(pickup)] + _backtrack(back, last)
    durations = [b - a for a, b in zip(onsets, onsets[1:])] + [_held(length - last)]
    return LinePlan(text, tuple(s for s, _, _ in syls), bars, tuple(onsets), tuple(durations),
                    float(ends[last]))


_INF = float("inf")


def _dp_table(syls: list[tuple[Syllable, bool, bool]], weights: tuple[int, ...],
              place: np.ndarray, first_at_downbeat: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """cost[i, t]: the cheapest way to put syllable i at slot t (syllables 0..i placed);
    back[i, t]: the length in eighths of syllable i-1's note on that way."""
    spb = len(weights)
    n, length = place.shape
    cost = np.full((n, length), _INF)
    back = np.zeros((n, length), dtype=np.int64)
    for t in range(1 if first_at_downbeat else min(spb, length)):  # the line starts within its first bar
        cost[0, t] = place[0, t] + 0.08 * t
    for i in range(1, n):
        pause = syls[i - 1][2]
        for t in range(i, length):
            cost[i, t], back[i, t] = _best_step(cost[i - 1], weights, t, pause, cost[i, t])
            cost[i, t] += place[i, t]
    return cost, back


def _best_step(prev: np.ndarray, weights: tuple[int, ...], t: int, pause: bool,
               c0: float) -> tuple[float, int]:
    """The cheapest previous note (1 to 4 eighths long) to reach slot t from, as (cost, length);
    (c0, 0) when none beats c0."""
    best, step = c0, 0
    for d in range(1, 5):
        if t - d < 0 or prev[t - d] == _INF:
            continue
        c = prev[t - d] + _dur_cost(weights, t - d, d, pause)
        if c < best:
            best, step = c, d
    return best, step


def _end_costs(last_row: np.ndarray, spb: int, final: bool = False) -> np.ndarray:
    """The cost of ending the line with its last syllable at each slot, held to the phrase end
    (a last note shorter than a quarter, or a long rest before the phrase end, costs; a
    stanza's `final` note shorter than half a bar costs much more)."""
    length = len(last_row)
    ends = np.full(length, _INF)
    for t in range(length):
        hold = length - t
        if last_row[t] == _INF or hold < 1:
            continue
        ends[t] = last_row[t] + (1.5 if hold < 2 else 0.0) + 0.08 * max(0, hold - spb)
        if final and hold < max(4, spb // 2):
            ends[t] += 3.0
    return ends


def _backtrack(back: np.ndarray, last: int) -> list[int]:
    """The onsets of the best path that ends at slot `last`."""
    onsets = [last]
    for i in range(back.shape[0] - 1, 0, -1):
        onsets.append(onsets[-1] - int(back[i, onsets[-1]]))
    onsets.reverse()
    return onsets


def _held(slots: int) -> int:
    """The longest note of at most `slots` eighths that the token vocabulary holds exactly
    (a phrase's last note is held to the phrase end, or as near as the vocabulary allows)."""
    step = SLOT_TICKS // GRID
    return max(d // step for d in DURATIONS if d % step == 0 and d <= slots * step)


def plan_melody(text: str, time_signature: object = (4, 4), bars_per_line: int | None = None,
                *, seed: int | None = None) -> MelodyPlan:
    """The rhythm plan of a whole lyric: `split_lines`, then `plan_line` for each line."""
    ts = parse_time_signature(time_signature)
    lines = split_lines(text)
    ends = stanza_ends(text, lines)
    syls = [_line_syllables(ln) for ln in lines]
    spb = len(METRES[ts])
    picks = [pickup_count(sy, spb) for sy in syls]
    plans = tuple(plan_line(sy, ts, bars_per_line, seed=None if seed is None else seed * 1009 + i,
                            reserve=picks[i + 1] if i + 1 < len(lines) else 0, final=ends[i])
                  for i, sy in enumerate(syls))
    plans = tuple(replace(p, text=ln) for p, ln in zip(plans, lines))
    plan = MelodyPlan(ts, plans, lead_in=1 if plans[0].pickup else 0, stanza_ends=tuple(ends))
    if plan.bars > MAX_BARS:
        raise ParameterError(f"the text needs {plan.bars} bars; at most {MAX_BARS} per request")
    return plan


# ------------------------------------------------------------------ plan -> clip
def rhythm_clip(plan: MelodyPlan, *, tempo: float = DEFAULT_TEMPO, program: int = 0,
                pitch: int = 67) -> Clip:
    """The plan as a one-track clip with placeholder pitches and the syllables as lyrics;
    stressed syllables a little louder."""
    ts = plan.time_signature
    notes = []
    for (start, dur, s, _), ev in zip(plan.notes(), _events(plan)):
        vel = _VELOCITY_STRESSED if s.stress == 1 else _VELOCITY_PLAIN
        notes.append(Note(pitch, vel, start, dur, ev))
    length = plan.bars * plan.slots_per_bar * SLOT_TICKS
    return Clip(tracks=(Track(tuple(notes), program=program, name="melody"),),
                tempos=(TempoChange(0, float(tempo)),), time_signatures=(TimeSignature(0, *ts),),
                length_ticks=length, name="melody_for")


def _events(plan: MelodyPlan) -> list[str]:
    return [e for ln in plan.lines for e in to_lyric_events(list(ln.syllables))]


def _with_lyrics(clip: Clip, plan: MelodyPlan) -> Clip:
    """The generated clip with each planned syllable on the note at its onset (track 0)."""
    at = {start: ev for (start, _, _, _), ev in zip(plan.notes(), _events(plan))}
    if not clip.tracks:
        return clip
    t0 = clip.tracks[0]
    used: set[int] = set()
    notes = []
    for n in t0.notes:  # sorted by (onset, pitch): the first note at an onset takes its syllable
        ev = at.get(n.start_tick) if n.start_tick not in used else None
        if ev is not None:
            used.add(n.start_tick)
        notes.append(replace(n, lyric=ev))
    return replace(clip, tracks=(replace(t0, notes=tuple(notes), name="melody"), *clip.tracks[1:]))


# ------------------------------------------------------------------ figures
def _weight_at(tick: int, weights: tuple[int, ...]) -> int:
    bar = len(weights) * SLOT_TICKS
    pos = tick % bar
    return weights[pos // SLOT_TICKS] if pos % SLOT_TICKS == 0 else 0


def melody_figures(clip: Clip, plan: MelodyPlan, *, tonic: int | None = None,
                   pitch_range: tuple[int, int] | None = None) -> dict:
    """How well a melody sets its lyric, measured on the clip's notes and their lyric events.

    - `syllables`, `notes`, `melismas` (notes beyond one per syllable), `one_note_per_syllable`
      (every syllable on exactly one note, in order, at its planned onset; no note left bare);
    - `stress_on_beat`: share of stressed syllables (dictionary stress 1 or 2) whose note starts
      on a beat of the bar (4/4, 3/4, 2/4: the quarter beats; 6/8: the two dotted-quarter beats);
    - `stress_on_strong_beat`: the same on strong beats only (4/4: beats 1 and 3; 3/4 and 2/4:
      beat 1; 6/8: beats 1 and 2);
    - `word_stress_on_beat`: share of primary stresses of words of 2+ syllables on a beat;
    - `unstressed_on_strong_beat`: share of unstressed syllables on a strong beat (lower is better);
    - `phrase_ends_at_line_ends`: each line's last note is the last of its phrase's bars;
    - `lowest`, `highest`, `max_leap` (semitones between consecutive notes);
    - `pickups`: lines opening unstressed (`pickup_count` > 0) whose opening is sung before
      their first bar line, and `pickup_lines` how many open unstressed;
    - `in_range` (with `pitch_range`): every note within it;
    - with `tonic`: `ends_on_tonic` (the stanzas' last notes on the tonic, share),
      `line_ends_on_tonic_or_dominant` (share of lines);
    - `final_note_long`: each stanza's last note at least half a bar and the longest of its line.
    """
    weights = METRES[plan.time_signature]
    planned = plan.notes()
    notes = sorted((n for t in clip.tracks if not t.is_drum for n in t.notes),
                   key=lambda n: (n.start_tick, n.pitch))
    sung = [n for n in notes if n.lyric]
    stressed = [(s, _weight_at(n.start_tick, weights)) for n, (_, _, s, _) in zip(sung, planned)]
    pitches = [n.pitch for n in notes]
    return {
        "syllables": plan.n_syllables, "notes": len(notes), "melismas": max(0, len(notes) - len(sung)),
        "one_note_per_syllable": _one_note_per_syllable(plan, notes, sung),
        **_stress_rates(stressed),
        "phrase_ends_at_line_ends": _phrase_ends_at_line_ends(plan, notes),
        "lowest": min(pitches, default=None), "highest": max(pitches, default=None),
        "max_leap": max((abs(a - b) for a, b in zip(pitches, pitches[1:])), default=0),
        **_shape_figures(plan, sung, tonic, pitch_range, pitches),
    }


def _shape_figures(plan: MelodyPlan, sung: list[Note], tonic: int | None,
                   pitch_range: tuple[int, int] | None, pitches: list[int]) -> dict:
    """Pickups, range, cadences and the final note of `melody_figures`."""
    bar = plan.slots_per_bar * SLOT_TICKS
    out: dict = {}
    want = got = 0
    ends: list[tuple[int, Note, bool]] = []
    k, bar0 = 0, plan.lead_in
    for i, ln in enumerate(plan.lines):
        notes = sung[k: k + len(ln.syllables)]
        k += len(ln.syllables)
        opens_weak = pickup_count(_line_syllables(ln.text), plan.slots_per_bar) > 0
        if opens_weak and notes:
            want += 1
            first = bar0 * bar
            main = [n for n in notes if n.start_tick >= first]
            got += bool(main) and main[0].start_tick == first and notes[0].start_tick < first
        if notes:
            ends.append((i, notes[-1], plan.ends_stanza(i)))
            if plan.ends_stanza(i):
                out.setdefault("_final", []).append(
                    notes[-1].duration_ticks >= bar // 2 and notes[-1].duration_ticks >= max(
                        n.duration_ticks for n in notes))
        bar0 += ln.bars
    out["pickup_lines"], out["pickups"] = want, got
    if pitch_range is not None:
        out["in_range"] = bool(pitches) and all(pitch_range[0] <= p <= pitch_range[1] for p in pitches)
    if tonic is not None:
        st = [n.pitch % 12 == tonic % 12 for _, n, e in ends if e]
        ln_ok = [n.pitch % 12 in (tonic % 12, (tonic + 7) % 12) for _, n, _ in ends]
        out["ends_on_tonic"] = _rate(st)
        out["line_ends_on_tonic_or_dominant"] = _rate(ln_ok)
    finals = out.pop("_final", [])
    out["final_note_long"] = bool(finals) and all(finals)
    return out


def _rate(xs: list[bool]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _one_note_per_syllable(plan: MelodyPlan, notes: list[Note], sung: list[Note]) -> bool:
    """Every syllable on exactly one note, in order, at its planned onset; no note left bare."""
    planned = plan.notes()
    return bool(len(sung) == len(planned) == len(notes)
                and [n.lyric for n in sung] == _events(plan)
                and [n.start_tick for n in sung] == [p[0] for p in planned])


def _stress_rates(stressed: list[tuple[Syllable, int]]) -> dict[str, float | None]:
    """The stress figures of `melody_figures` from (syllable, metrical weight of its onset)."""
    return {
        "stress_on_beat": _rate([w >= 1 for s, w in stressed if s.stress >= 1]),
        "stress_on_strong_beat": _rate([w >= 2 for s, w in stressed if s.stress >= 1]),
        "word_stress_on_beat": _rate([w >= 1 for s, w in stressed
                                      if s.stress == 1 and not (s.is_first and s.is_last)]),
        "unstressed_on_strong_beat": _rate([w >= 2 for s, w in stressed if s.stress == 0]),
    }


def _phrase_ends_at_line_ends(plan: MelodyPlan, notes: list[Note]) -> bool:
    """Each line's last note within its phrase's bars (before the next line's pickup)
    carries the line's last syllable."""
    ends_ok, bar0 = True, plan.lead_in
    bar_ticks = plan.slots_per_bar * SLOT_TICKS
    for i, ln in enumerate(plan.lines):
        nxt = plan.lines[i + 1].pickup if i + 1 < len(plan.lines) else 0
        lo, hi = bar0 * bar_ticks, (bar0 + ln.bars) * bar_ticks - nxt * SLOT_TICKS
        inside = [n for n in notes if lo <= n.start_tick < hi]
        ends_ok &= bool(inside) and inside[-1].lyric == to_lyric_events(list(ln.syllables))[-1]
        bar0 += ln.bars
    return bool(ends_ok)


# ------------------------------------------------------------------ the operation
def melody_for(engine: Engine, text: str, style: str | dict[str, float] | None = None,
               variations: int = 4, **kw: object) -> list[Take]:
    """`variations` melodies for `text` (see the module doc), as `musegen.take.Take`s, from
    the music model `engine` (`Studio.melody_for` passes its own).

    Parameters beyond Studio's usual ones (seed, temperature, top_p, style_strength, key,
    scale, pitch_range, max_copy, slerp, tempo, program, on_progress, cancelled):
    `time_signature` (4/4 default; 3/4, 6/8, 2/4), `bars_per_line` (force the phrase length),
    `vary_rhythm` (default True: variation 1 has the best rhythm, later ones seeded
    alternatives; False: every variation shares the best rhythm). `pitch_range` defaults to
    `DEFAULT_PITCH_RANGE`, `max_leap` to `DEFAULT_MAX_LEAP` semitones, `tempo` to
    `DEFAULT_TEMPO` quarter notes per minute.
    """
    from musegen.generate.run import Engine, sample_params

    t_start = time.perf_counter()
    if not isinstance(engine, Engine):
        raise ParameterError(f"melody_for needs a musegen.generate.run.Engine, got {type(engine).__name__}")
    given = check("melody", dict(kw, style=style, variations=variations))
    if "style" in given and "styles" in given:
        raise ParameterError("give either style or styles, not both")
    style = given.pop("styles", given.pop("style", None))
    variations = int(given.pop("variations", default("melody", "variations")))  # type: ignore[call-overload]
    ts = given.pop("time_signature", default("melody", "time_signature"))
    voice = given.pop("voice", None)
    if voice is not None and "pitch_range" not in given:
        given["pitch_range"] = voice
    bars_per_line = given.pop("bars_per_line", None)
    vary = given.pop("vary_rhythm", default("melody", "vary_rhythm"))
    tempo = given.pop("tempo", DEFAULT_TEMPO)
    program = given.pop("program", default("melody", "program"))
    given.setdefault("pitch_range", DEFAULT_PITCH_RANGE)
    given.setdefault("max_leap", DEFAULT_MAX_LEAP)
    kw = given

    best = plan_melody(text, ts, bars_per_line)
    params, sp = sample_params(kw, bars=best.bars, variations=variations)
    request_seed = params["seed"]
    if kw.get("key") is None and kw.get("scale") is None:  # a singable key: at most 4 accidentals
        kw["key"] = choose_key(request_seed)
        params, sp = sample_params(dict(kw, seed=request_seed), bars=best.bars, variations=variations)
    tonic = _tonic(kw)
    lo, hi = kw["pitch_range"]  # type: ignore[misc]
    tok, v = engine.tok, engine.tok.vocab
    progress = kw.get("on_progress")
    out = []
    for i in range(variations):
        plan = best if i == 0 or not vary else plan_melody(text, ts, bars_per_line, seed=request_seed + i)
        rhythm = rhythm_clip(plan, tempo=float(tempo), program=program)
        ids = tok.encode(rhythm).astype(np.int64)
        forced, template = tok.bar_tokens(ids, 0, plan.bars)
        template = cadence_template(template, plan, v.ranges["pitch"], tonic, (lo, hi),
                                    kw.get("max_leap"))  # type: ignore[arg-type]
        prompt = tok.header(ids).astype(np.int64)
        state = tok.grammar.validate(prompt)

        def build(gen: np.ndarray, plan: MelodyPlan = plan, prompt: np.ndarray = prompt,
                  rhythm: Clip = rhythm) -> Clip:
            whole = tok.decode(np.concatenate([prompt, gen, [v.eos]]), name="melody_for")
            clip = whole.slice_bars(0, min(whole.n_bars, plan.bars))
            # the requested tempo exactly (not its token bin), the melody track's name, a key
            # signature: the lock's or the melody's own estimate
            clip = carry(clip, rhythm, key=kw.get("key") or clip.key)  # type: ignore[arg-type]
            return _with_lyrics(clip, plan)

        p = dict(params, seed=request_seed + i, bars=plan.bars)
        vecs, p["styles"] = engine.style_rows(style, 1, slerp=bool(kw.get("slerp")))
        rows = engine.run(prompt, state, forced, vecs, sp, seed=p["seed"], n=1, bars_n=plan.bars,
                          build=build, template=template, max_copy=p["max_copy"],
                          on_progress=_scaled(progress, i, variations),
                          cancelled=kw.get("cancelled"))  # type: ignore[arg-type]
        take = engine.take("melody_for", rows[0], p, None, (0, plan.bars))
        figures = melody_figures(take.clip, plan, tonic=tonic, pitch_range=(lo, hi))
        tp = dict(take.params, request_seed=request_seed, variation=i, text=text,
                  lines=len(plan.lines), time_signature=f"{ts[0]}/{ts[1]}", tempo=float(tempo),
                  program=program, vary_rhythm=vary, plan=plan.to_dict(), figures=figures,
                  voice=list(voice) if voice is not None else None)
        tp.pop("keep_rhythm", None)
        tp.pop("density", None)
        tp.pop("tracks", None)
        tp["variations"] = variations
        out.append(replace(take, params=tp))
    total = time.perf_counter() - t_start  # like other operations: the whole request's time
    return [replace(t, seconds=total, first_bar_s=out[0].first_bar_s) for t in out]


# keys a singer reads and sings comfortably: at most 4 sharps or flats
SINGABLE_KEYS = ("C major", "G major", "D major", "A major", "E major", "F major", "Bb major", "Eb major",
                 "Ab major", "A minor", "E minor", "B minor", "F# minor", "C# minor", "D minor", "G minor",
                 "C minor", "F minor")


def choose_key(seed: int) -> str:
    """A seeded key with at most four accidentals, major three times in four."""
    rng = np.random.default_rng(seed)
    majors, minors = SINGABLE_KEYS[:9], SINGABLE_KEYS[9:]
    return str(rng.choice(majors if rng.random() < 0.75 else minors))


def _tonic(kw: dict) -> int:
    from musegen.clip import parse_key

    return parse_key(str(kw.get("key") or "C major"))[0]


def cadence_template(template: list, plan: MelodyPlan, pitch: range, tonic: int,
                     pitch_range: tuple[int, int], max_leap: int | None = None) -> list:
    """The melody template with each line's last pitch limited to the tonic or the dominant, and
    each stanza's last to the tonic (within `pitch_range`): the KeepRhythm constraint lets the
    model choose among them. Template pitch entries are the notes in order. A `max_leap` too
    small to always reach them wins (under 4 semitones no line cadence, under 6 no final tonic)."""
    at = [k for k, t in enumerate(template) if isinstance(t, (int, np.integer)) and t in pitch]
    if len(at) != plan.n_syllables:  # not one pitch per planned note: leave the cadences free
        return template
    out = list(template)
    lo, hi = pitch_range
    idx = -1
    for i, ln in enumerate(plan.lines):
        idx += len(ln.syllables)
        pcs = {tonic % 12} if plan.ends_stanza(i) else {tonic % 12, (tonic + 7) % 12}
        if max_leap is not None and max_leap < (6 if plan.ends_stanza(i) else 4):
            continue
        allowed = tuple(pitch.start + p for p in range(lo, hi + 1) if p % 12 in pcs)
        if allowed:
            out[at[idx]] = allowed
    return out


def _scaled(progress: object, i: int, n: int) -> Callable[[float], None] | None:
    """Variation i's progress (0..1) as a share of the whole request's."""
    if not callable(progress):
        return None
    return lambda f: progress((i + f) / n)
