"""Arrange: add voices to what the musician wrote (harmonize a melody, add a bass line, fill a
missing part). `Studio.arrange` is the front; this module is the operation.

    >>> takes = studio.arrange(Clip.load("tune.mid"), add="satb", style="bach-chorale")
    >>> takes = studio.arrange(chorale, keep=[0, 2, 3], add="alto")   # fill the missing alto

How: the kept tracks and the added (silent) ones are declared together in the header, the kept
tracks' notes of the region become a template, and the sampler's `KeepVoices` constraint
forces each kept note into the token stream at its position while the model writes the other
tracks around it (the grammar still decides what is valid). The model reads left to right, so
at a position it knows the kept voices up to there, not their next notes (the benchmark
`benchmarks/arrange.py` measures what that costs). Every kept note in a take is the musician's
own, exactly (ticks, velocities, durations): the tokens only decide the added voices.

Voices by role: `soprano`, `alto`, `tenor`, `bass` (their usual SATB ranges, `SATB_RANGES`),
`counter` (a free counter-voice), `satb` (whichever of the four the kept tracks leave
missing), or a count (`2`: the missing roles in the order bass, alto, tenor, soprano). The
kept tracks' roles come from their register (`infer_roles`) unless given.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from musegen.clip import Clip, Track
from musegen.errors import ParameterError
from musegen.evaluation import musicianship
from musegen.generate import voices as vl
from musegen.generate.constraints import KeptVoices, template_notes
from musegen.generate.run import Engine, sample_params
from musegen.params import check, default
from musegen.take import Take
from musegen.tokenizer.vocab import Vocab

ROLES = ("soprano", "alto", "tenor", "bass")
COUNTER = "counter"
# the four voices' ranges, as the musicianship figures count them (soprano C4-G5, alto G3-D5,
# tenor C3-G4, bass E2-C4)
SATB_RANGES: dict[str, tuple[int, int]] = dict(zip(ROLES, musicianship.SATB_RANGES))
ORDER = ("soprano", "alto", COUNTER, "tenor", "bass")  # the arrangement's track order, high to low
BY_COUNT = ("bass", "alto", "tenor", "soprano")  # `add=N`: the missing roles in this order


@dataclass(frozen=True)
class Voice:
    """One track of the arrangement: its role, and its index in the musician's clip (None: added)."""

    role: str
    source: int | None

    @property
    def added(self) -> bool:
        return self.source is None


def parse_add(add: object) -> list[str] | int:
    """`add` as given -> role names (`satb` expands later, against the kept roles) or a count."""
    if isinstance(add, int) and not isinstance(add, bool):
        if add < 1:
            raise ParameterError(f"add must name voices or be a count of at least 1, got {add}")
        return add
    if not isinstance(add, str) or not add.strip():
        raise ParameterError(f"add must be voices like 'satb', 'bass', 'alto,tenor' or a count, got {add!r}")
    text = add.strip().lower()
    if text.isdigit():
        return parse_add(int(text))
    out = []
    for word in text.replace(",", " ").split():
        if word not in (*ROLES, COUNTER, "satb"):
            raise ParameterError(f"add: unknown voice {word!r}; use soprano, alto, tenor, bass, "
                                 f"satb, counter or a count")
        out.append(word)
    return out


def role_centres(voice_data: dict) -> dict[str, float]:
    """Each role's centre pitch: the middle of its range in Bach's four-voice chorales as the
    model's `voices.json` measured them, else of `SATB_RANGES`."""
    measured = voice_data.get("bach-chorale", {}).get("ranges", {}).get("4")
    ranges = dict(zip(ROLES, measured)) if measured and len(measured) == 4 else SATB_RANGES
    return {r: sum(ranges[r]) / 2 for r in ROLES}


def infer_roles(tracks: Sequence[Track], centres: dict[str, float] | None = None) -> list[str]:
    """SATB roles for tracks from their register: the assignment (in pitch order: a higher
    track never gets a lower role) whose role centres (`role_centres`) lie closest to the
    tracks' median pitches. More than four tracks: the rest are counter-voices."""
    medians = [statistics.median(n.pitch for n in t.notes) for t in tracks]
    order = sorted(range(len(tracks)), key=lambda i: -medians[i])
    n = min(4, len(tracks))
    centre = centres or role_centres({})
    best = min(itertools.combinations(ROLES, n),
               key=lambda combo: sum(abs(medians[i] - centre[r]) for i, r in zip(order, combo)))
    roles = [COUNTER] * len(tracks)
    for i, r in zip(order, best):
        roles[i] = r
    return roles


def added_roles(add: list[str] | int, kept: Sequence[str]) -> list[str]:
    """The roles to add, given the kept tracks' roles; ParameterError for a role that is there."""
    missing = [r for r in ROLES if r not in kept]
    if isinstance(add, int):
        roles = [r for r in BY_COUNT if r in missing][:add]
        roles += [COUNTER] * (add - len(roles))
        return roles
    out: list[str] = []
    for word in add:
        if word == "satb":
            if not missing:
                raise ParameterError("add satb: the kept tracks already hold soprano, alto, tenor and bass")
            out += [r for r in missing if r not in out]
            continue
        if word != COUNTER and (word in kept or word in out):
            raise ParameterError(f"add {word!r}: the arrangement already has its {word} "
                                 f"(the kept tracks' roles: {', '.join(kept)})")
        out.append(word)
    return out


def plan(clip: Clip, add: object, keep: Sequence[int] | None, roles: Sequence[str] | None,
         n_tracks: int, centres: dict[str, float] | None = None) -> list[Voice]:
    """The arrangement's voices, high to low; one clear error for each kind of bad input."""
    if not clip.tracks or not any(t.notes for t in clip.tracks):
        raise ParameterError("arrange: the clip has no notes to arrange")
    keep = list(keep) if keep is not None else [i for i, t in enumerate(clip.tracks) if t.notes]
    for i in keep:
        if not 0 <= i < len(clip.tracks):
            raise ParameterError(f"keep: track {i} is not in the clip (tracks 0..{len(clip.tracks) - 1})")
        if clip.tracks[i].is_drum:
            raise ParameterError(f"keep: track {i} is a drum track; arrange needs a pitched melody")
        if not clip.tracks[i].notes:
            raise ParameterError(f"keep: track {i} has no notes")
    if len(set(keep)) != len(keep):
        raise ParameterError(f"keep names a track twice: {keep}")
    if roles is None:
        kept_roles = infer_roles([clip.tracks[i] for i in keep], centres)
    else:
        kept_roles = [str(r).lower() for r in roles]
        if len(kept_roles) != len(keep):
            raise ParameterError(f"roles: {len(kept_roles)} roles for {len(keep)} kept tracks")
        for r in kept_roles:
            if r not in (*ROLES, COUNTER):
                raise ParameterError(f"roles: unknown role {r!r}; use soprano, alto, tenor, bass or counter")
        dup = [r for r in ROLES if kept_roles.count(r) > 1]
        if dup:
            raise ParameterError(f"roles: {dup[0]} given to two kept tracks")
    new = added_roles(parse_add(add), kept_roles)
    total = len(keep) + len(new)
    if total > n_tracks:
        raise ParameterError(f"add: {len(keep)} kept + {len(new)} added = {total} tracks; "
                             f"the tokenizer holds at most {n_tracks}")
    voices = [Voice(r, i) for r, i in zip(kept_roles, keep)] + [Voice(r, None) for r in new]
    return sorted(voices, key=lambda v: (ORDER.index(v.role), v.added))


def layout(clip: Clip, voices: Sequence[Voice]) -> Clip:
    """The clip with the arrangement's tracks: the kept ones as given, the added ones silent
    (named by role, in the first kept track's program)."""
    first = next(v.source for v in voices if v.source is not None)
    program = clip.tracks[first].program
    tracks = tuple(clip.tracks[v.source] if v.source is not None
                   else Track((), program=program, name=v.role.title()) for v in voices)
    return replace(clip, tracks=tracks)


def voice_plan(voices: Sequence[Voice], given: dict) -> vl.VoicePlan | None:
    """The voice-leading plan of an arrangement (`musegen.generate.voices`), or None when it is
    off: every track a voice, high to low as laid out, each added SATB voice in its range (the
    kept ones are given, so only their order matters). `voice_leading` auto: on for the
    multi-voice styles and for arrangements of three voices or more."""
    mode = str(given.get("voice_leading", "auto"))
    styled = vl.dominant_style(given.get("style")) in vl.STYLES
    if mode == "off" or (mode == "auto" and not styled and len(voices) < vl.MIN_VOICES_AUTO):
        return None
    ranges = {i: SATB_RANGES[v.role] for i, v in enumerate(voices) if v.added and v.role in SATB_RANGES}
    # present=False: an added voice already sounds in every bar (KeepVoices), and a kept voice
    # that rests is the musician's choice
    return vl.VoicePlan(frozenset(range(len(voices))), tuple(range(len(voices))), ranges, present=False)


def arrange(engine: Engine, clip: Clip | Take, add: object = "satb",
            style: str | dict[str, float] | None = None, keep: Sequence[int] | None = None,
            bars: tuple[int, int] | None = None, variations: int = 4, **kw: object) -> list[Take]:
    """`variations` arrangements of `clip` (see the module doc) as Takes whose parent is the
    clip's take (when it is one). `bars=(first, last)` (1-based, inclusive): only those bars
    get the added voices. Keywords: `musegen.params.params_for("arrange")`."""
    parent = clip.id if isinstance(clip, Take) else None
    base = clip.clip if isinstance(clip, Take) else clip
    if not isinstance(base, Clip):
        raise ParameterError(f"expected a Clip or a Take, got {type(clip).__name__}")
    given = check("arrange", dict(kw, add=add, style=style, keep=keep, bars=bars, variations=variations))
    variations = int(given.get("variations", default("arrange", "variations")))  # type: ignore[call-overload]
    tok, v = engine.tok, engine.tok.vocab
    voices = plan(base, given.get("add", "satb"), given.get("keep"), given.get("roles"), v.n_tracks,
                  role_centres(engine.voice_data))
    a, b = given.get("bars", (1, base.n_bars))  # type: ignore[misc]
    if not 1 <= a <= b <= base.n_bars:
        raise ParameterError(f"bars {a}..{b} outside the clip's bars 1..{base.n_bars}")
    params, sp = sample_params(given, bars=b - a + 1, variations=variations)

    # the bars before the region the model reads (at most a quarter of its context), the region
    arranged = layout(base, voices)
    lo = a - 1
    while lo > 0:
        ids = tok.encode(arranged, eos=False, bars=(lo - 1, a - 1))
        if len(ids) > engine.model.cfg.context // 4:
            break
        lo -= 1
    ids = tok.encode(arranged, eos=False, bars=(lo, b)).astype(np.int64)
    starts = tok.bar_offsets(ids)
    prompt = ids[:starts[a - 1 - lo]]
    forced, middle = tok.bar_tokens(ids, a - 1 - lo, b - lo)
    state = tok.grammar.validate(prompt)
    kept_tracks = frozenset(i for i, voice in enumerate(voices) if not voice.added)
    kept = KeptVoices(tuple(middle), kept_tracks)
    widest = max(np.diff(np.r_[tok.bar_offsets(middle), len(middle)], prepend=0))
    sp = replace(sp, lock_meter=False,  # KeepVoices writes the template's metre itself
                 max_tokens_per_bar=max(sp.max_tokens_per_bar, 2 * int(widest) + 64),
                 voices=voice_plan(voices, given))
    params["voice_led"] = sp.voices is not None
    lo_tick, hi_tick = base.bar_starts[a - 1], base.bar_starts[b]
    n_before = a - 1 - lo

    def build(gen: np.ndarray) -> Clip:
        whole = tok.decode(np.concatenate([prompt, gen, [v.eos]]), name=base.name)
        shift = lo_tick - whole.bar_starts[min(n_before, whole.n_bars)]
        tracks = []
        for i, voice in enumerate(voices):
            if not voice.added:
                tracks.append(arranged.tracks[i])  # the musician's notes, exactly
                continue
            notes = tuple(replace(n, start_tick=n.start_tick + shift,
                                  duration_ticks=min(n.duration_ticks, hi_tick - n.start_tick - shift))
                          for n in whole.tracks[i].notes
                          if lo_tick <= n.start_tick + shift < hi_tick)
            tracks.append(replace(arranged.tracks[i], notes=notes))
        return replace(arranged, tracks=tuple(tracks))

    def judged(c: Clip) -> Clip:  # novelty: the added voices only (the kept ones are given)
        return replace(c, tracks=tuple(t for t, voice in zip(c.tracks, voices) if voice.added))

    vecs, params["styles"] = engine.style_rows(style if "style" in given else None, variations,
                                               slerp=False)
    rows = engine.run(prompt, state, forced, vecs, sp, seed=params["seed"], n=variations,
                      bars_n=b - a + 1, build=build, kept=kept, judged=judged,
                      max_copy=params["max_copy"],
                      on_progress=given.get("on_progress"),  # type: ignore[arg-type]
                      cancelled=given.get("cancelled"))  # type: ignore[arg-type]
    record = dict(params, add=[voice.role for voice in voices if voice.added],
                  keep=[voice.source for voice in voices if not voice.added],
                  roles=[voice.role for voice in voices],
                  kept_tracks=sorted(kept_tracks), bars=[a, b])
    for name in ("keep_rhythm", "density", "tracks"):
        record.pop(name, None)
    out = []
    for row in rows:
        take = engine.take("arrange", row, record, parent, (a - 1, b))
        lost = kept_lost(tok.vocab, row.gen[len(forced):], middle, kept_tracks)
        if lost:
            take = replace(take, params=dict(take.params, kept_tokens_lost=lost))
        out.append(take)
    return out


def kept_lost(v: Vocab, gen: Sequence[int], middle: Sequence[int], kept: frozenset[int]) -> int:
    """How many of the template's kept notes a row's tokens (after the forced ones) do not
    hold as given: 0 when the constraint forced every one (the take's kept notes are the
    musician's either way)."""
    want = template_notes(v, middle)
    got = [n for n in template_notes(v, [int(t) for t in gen]) if n[2] in kept]
    missing = len(want)
    pool = list(got)
    for n in want:
        if n in pool:
            pool.remove(n)
            missing -= 1
    return missing


__all__ = ["COUNTER", "ORDER", "ROLES", "SATB_RANGES", "Voice", "added_roles", "arrange",
           "infer_roles", "layout", "parse_add", "plan"]
