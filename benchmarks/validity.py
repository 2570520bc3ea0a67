"""1,000 takes across styles and parameters: every one valid, exactly the requested bars,
constraints respected (key lock: no pitch outside the scale; range: none outside; max leap:
no step between a track's consecutive notes wider than asked, unless the key lock and range
left no pitch within reach, in the order the notes were drawn).

    python -m benchmarks.validity --model default --takes 1000 --out benchmarks/results/validity.md
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from benchmarks._report import emit
from musegen import Clip
from musegen.clip import parse_key
from musegen.examples import example_path
from musegen.generate.constraints import last_pitches
from musegen.generate.filters import scale_pitch_classes
from musegen.studio import Studio
from musegen.tokenizer.vocab import DRUM_PROGRAM

KEYS = [None, "C major", "D major", "A minor", "E minor", "G major", "F major"]


def leap_ok(studio: Studio, before: Clip | None, gen: tuple[int, ...], max_leap: int,
            allowed: object) -> bool:
    """Every pitch of `gen` (tokens in drawn order) within `max_leap` of its track's previous
    pitch (`before`'s last for the first), or no `allowed(pitch)` within reach at all."""
    tok = studio.tok
    v = tok.vocab
    last: dict[int, int] = {}
    programs: list[int] = []
    if before is not None:
        ids = tok.encode(before, eos=False)
        last = last_pitches(tok, ids)
        programs = [int(t) - v.ranges["program"].start for t in tok.header(ids)
                    if int(t) in v.ranges["program"]]
    track = 0
    for t in gen:
        if t == v.bar:
            track = 0
        elif t in v.ranges["track"]:
            track = t - v.ranges["track"].start
        elif t in v.ranges["pitch"]:
            p = t - v.ranges["pitch"].start
            prev = last.get(track)
            drum = track < len(programs) and programs[track] == DRUM_PROGRAM
            if prev is not None and not drum and abs(p - prev) > max_leap and any(
                    allowed(q) for q in range(max(0, prev - max_leap), min(127, prev + max_leap) + 1)):
                return False
            last[track] = p
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--takes", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--backend", default="auto", help="decode path: auto, torch or onnx")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    studio = Studio(model=args.model, backend=args.backend)
    prompts = {"folk": Clip.load(example_path("folk")).slice_bars(0, 8),
               "chorale": Clip.load(example_path("chorale")).slice_bars(0, 4), "nothing": None}
    n = ok = bars_ok = key_ok = range_ok = saved_ok = leap_ok_n = leap_n = 0
    bad: list[str] = []
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp())
    while n < args.takes:
        style = rng.choice(studio.style_names + [None])
        prompt = rng.choice(list(prompts))
        bars = rng.choice([1, 2, 4, 8])
        key = rng.choice(KEYS)
        pr = rng.choice([None, (55, 79), (60, 72), (40, 90)])
        kw = {"temperature": rng.choice([0.7, 1.0, 1.3]), "top_p": rng.choice([0.9, 0.95, 1.0]),
              "seed": rng.randrange(10**6)}
        if key:
            kw["key"] = key
        if pr:
            kw["pitch_range"] = pr
        if rng.random() < 0.3:
            kw["density"] = rng.choice([2, 4, 8, 16])
        leap = rng.choice([2, 5, 7, 12]) if rng.random() < 0.3 else None
        if leap is not None:
            kw["max_leap"] = leap
        op = rng.choice(["continue", "regenerate"] if prompts[prompt] is not None else ["continue"])
        if op == "continue":
            takes = studio.continue_(prompts[prompt], bars=bars, variations=4, style=style, **kw)
            want = bars
            before = prompts[prompt]
        else:
            c = prompts[prompt]
            a = rng.randint(1, c.n_bars)
            b = min(c.n_bars, a + rng.randint(0, 2))
            takes = studio.regenerate(c, bars=(a, b), variations=4, style=style, **kw)
            want = c.n_bars
            before = c.slice_bars(0, a - 1) if a > 1 else None
        for i, t in enumerate(takes):
            n += 1
            good_bars = t.clip.n_bars == want
            lo_bar, hi_bar = t.bars
            region = [x for x in t.clip.pitched_notes()
                      if t.clip.bar_starts[lo_bar] <= x.start_tick < t.clip.bar_starts[hi_bar]]
            pcs = scale_pitch_classes(*parse_key(key)) if key else None
            good_key = pcs is None or all(x.pitch % 12 in pcs for x in region)
            good_range = pr is None or all(pr[0] <= x.pitch <= pr[1] for x in region)
            good_leap = leap is None or leap_ok(
                studio, before, t.tokens, leap,
                lambda q, pcs=pcs, pr=pr: (pcs is None or q % 12 in pcs)
                and (pr is None or pr[0] <= q <= pr[1]))
            path = t.save(tmp / f"t{n}.mid")
            good_saved = Clip.load(path).n_bars == want
            bars_ok += good_bars
            key_ok += good_key
            range_ok += good_range
            saved_ok += good_saved
            leap_n += leap is not None
            leap_ok_n += leap is not None and good_leap
            if good_bars and good_key and good_range and good_saved and good_leap:
                ok += 1
            else:
                bad.append(f"{op} {prompt} style={style} bars={bars} kw={kw} take {i}")
    wall = time.perf_counter() - t0
    lines = ["# 1,000 takes: validity and constraints", "",
             f"`python -m benchmarks.validity --model {args.model} --takes {args.takes} --backend "
             f"{args.backend}`; model {studio.model_id}; decode path {studio.backend}; {wall:.0f} s on "
             f"{studio.device}.", "",
             "| check | takes passing |", "|---|---:|",
             f"| decodes to MIDI with exactly the requested bars | {bars_ok} / {n} |",
             f"| written, re-read by `Clip.load`, same bar count | {saved_ok} / {n} |",
             f"| key lock: no generated pitch outside the scale | {key_ok} / {n} |",
             f"| pitch range: no generated pitch outside it | {range_ok} / {n} |",
             f"| max leap (asked of {leap_n} takes): no wider step within reach of the key and "
             f"range | {leap_ok_n} / {leap_n} |",
             f"| **all of the above** | **{ok} / {n}** |", ""]
    if bad:
        lines += ["Failures:", ""] + [f"- {b}" for b in bad[:40]]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
