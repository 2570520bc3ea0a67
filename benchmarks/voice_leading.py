"""Voice leading before and after (issue 14 items 2, 3, 6): the same seeded requests with
`voice_leading="off"` and the default (`auto`), against the real next bars.

Prompts: the first 4 bars of real chorales (BWV 144.6 and 117.4, held out, and the shipped
example), continued by 4 bars x `--takes`; a 6-voice Palestrina piece and a "fugue" prompt
(a chorale whose alto and tenor have not entered yet: music21's corpus has no keyboard fugue)
for voices kept; bach-chorale and renaissance-mass from nothing for the voice count.

    python -m benchmarks.voice_leading [--takes 2] [--bars 4] [--out benchmarks/results/voice_leading.md]

The figures are local to this script (the issue's official ones live in
`musegen.evaluation.musicianship`): a *moment* is every onset of any voice; a *beat* every
beat of the bar at which at least three notes sound; voices are ordered by their mean pitch in
the prompt (crossings and bass-below-tenor are counted against that order).
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

from musegen import Clip
from musegen.clip import Track
from musegen.corpus.m21midi import score_to_midifile
from musegen.examples import example_path
from musegen.generate.voices import is_plain_chord
from musegen.studio import Studio

CHORALES = ("bach/bwv144.6", "bach/bwv117.4")
PALESTRINA6 = "palestrina/Agnus_09"  # six voices (its **kern header has six spines)


def m21_clip(name: str) -> Clip:
    import music21

    score = music21.corpus.parse(name)
    buf = io.BytesIO()
    score_to_midifile(score).save(file=buf)
    return Clip.from_bytes(buf.getvalue(), name=name)


def order(clip: Clip) -> list[int]:
    means = [np.mean([n.pitch for n in t.notes]) if t.notes else 0 for t in clip.tracks]
    return sorted(range(len(clip.tracks)), key=lambda i: -means[i])


def sounding(clip: Clip, tick: int) -> list[int | None]:
    out = []
    for t in clip.tracks:
        ps = [n.pitch for n in t.notes if n.start_tick <= tick < n.end_tick]
        out.append(max(ps) if ps else None)
    return out


def figures(clip: Clip, top_down: list[int]) -> dict:
    """Triads on beats, parallels per bar, crossings, overlaps, bass below tenor."""
    beat = clip.bar_starts[1] - clip.bar_starts[0] if clip.n_bars > 1 else 1920
    ts = clip.time_signature_at(0)
    beat = 1920 // ts.denominator if ts.denominator else 480
    onsets = sorted({n.start_tick for t in clip.tracks for n in t.notes})
    moments = [sounding(clip, x) for x in onsets]
    cross = sum(any(m[a] is not None and m[b] is not None and m[a] < m[b]
                    for a, b in zip(top_down, top_down[1:])) for m in moments)
    par = 0
    for m0, m1 in zip(moments, moments[1:]):
        for i in range(len(m0)):
            for j in range(i + 1, len(m0)):
                if None in (m0[i], m0[j], m1[i], m1[j]) or m0[i] == m1[i] or m0[j] == m1[j]:
                    continue
                a, b = abs(m0[i] - m0[j]) % 12, abs(m1[i] - m1[j]) % 12
                if a == b and a in (0, 7):
                    par += 1
    beats = [sounding(clip, x) for x in range(0, clip.length_ticks, beat)]
    full = [[p for p in b if p is not None] for b in beats]
    full = [b for b in full if len(b) >= 3]
    notes = sum(len(t.notes) for t in clip.tracks)
    over = sum(sum(1 for a, b in zip(t.notes, t.notes[1:]) if b.start_tick < a.end_tick) for t in clip.tracks)
    bt = None
    if len(top_down) >= 4:
        pairs = [(m[top_down[-2]], m[top_down[-1]]) for m in moments]
        pairs = [(t, b) for t, b in pairs if t is not None and b is not None]
        bt = sum(b <= t for t, b in pairs) / max(1, len(pairs))
    return {"triads": sum(is_plain_chord(b) for b in full) / max(1, len(full)),
            "parallels_per_bar": par / max(1, clip.n_bars), "crossings": cross / max(1, len(moments)),
            "overlaps": over / max(1, notes), "bass_below_tenor": bt,
            "voices": sum(1 for t in clip.tracks if t.notes), "tracks": len(clip.tracks)}


def mean(rows: list[dict], k: str) -> float | None:
    xs = [r[k] for r in rows if r.get(k) is not None]
    return float(np.mean(xs)) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--takes", type=int, default=2)
    ap.add_argument("--bars", type=int, default=4)
    ap.add_argument("--nothing", type=int, default=8, help="takes from nothing per style")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    st = Studio()
    chorales = [m21_clip(n) for n in CHORALES] + [Clip.load(example_path("chorale"))]
    lines = ["| case | mode | triads on beats | parallel 5/8 per bar | crossings | overlaps "
             "| bass ≤ tenor | voices sounding / prompt's | s per take |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def row(case: str, mode: str, rs: list[dict], secs: float | None, want: int) -> None:
        f = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
        kept = sum(r["voices"] == want for r in rs)
        emit(f"| {case} | {mode} | {f(mean(rs, 'triads'))} | {f(mean(rs, 'parallels_per_bar'))} | "
                     f"{f(mean(rs, 'crossings'))} | {f(mean(rs, 'overlaps'))} | {f(mean(rs, 'bass_below_tenor'))} | "
                     f"{kept}/{len(rs)} all {want} | {'' if secs is None else f'{secs:.1f}'} |")

    real = [figures(c.slice_bars(4, 4 + a.bars), order(c.slice_bars(0, 4))) for c in chorales]
    for line in lines:
        print(line, flush=True)

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    row("chorales, real next bars", "–", real, None, 4)
    for mode in ("off", "auto"):
        rs, t0 = [], time.perf_counter()
        for k, c in enumerate(chorales):
            takes = st.continue_(c.slice_bars(0, 4), bars=a.bars, variations=a.takes, style="bach-chorale",
                                 seed=100 + k, voice_leading=mode)
            rs += [figures(t.clip, order(c.slice_bars(0, 4))) for t in takes]
        row("chorales, continue", mode, rs, (time.perf_counter() - t0) / len(rs), 4)
    # voices kept: a 6-voice Palestrina and a chorale whose alto and tenor have not entered
    pal = m21_clip(PALESTRINA6)
    assert len(pal.tracks) == 6, len(pal.tracks)
    c = chorales[-1].slice_bars(0, 4)
    fugue = Clip(tracks=(c.tracks[0], Track((), 0, False, "alto"), Track((), 0, False, "tenor"), c.tracks[3]),
                 tempos=c.tempos, time_signatures=c.time_signatures, length_ticks=c.length_ticks)
    first = pal.slice_bars(0, 4)
    for case, clip, style, by in (("Palestrina 6 voices", first, "renaissance-mass", first),
                                  ("chorale, 2 voices yet to enter", fugue, "bach-chorale", c)):
        for mode in ("off", "auto"):
            t0 = time.perf_counter()
            takes = st.continue_(clip, bars=a.bars, variations=a.takes, style=style, seed=7, voice_leading=mode)
            rs = [figures(t.clip, order(by)) for t in takes]
            row(case, mode, rs, (time.perf_counter() - t0) / len(rs), len(clip.tracks))
    for style in ("bach-chorale", "renaissance-mass"):
        for mode in ("off", "auto"):
            t0 = time.perf_counter()
            takes = st.continue_(None, bars=2, variations=a.nothing, style=style, seed=11, voice_leading=mode)
            n = [len(t.clip.tracks) for t in takes]
            emit(f"| {style} from nothing | {mode} | voices per take: {n} | | | | | | "
                         f"{(time.perf_counter() - t0) / len(takes):.1f} |")
    text = "\n".join(lines)
    if a.out:
        a.out.write_text("# Voice leading: before (off) and after (auto)\n\n"
                         "`python -m benchmarks.voice_leading` on a shared, loaded 2-core machine "
                         "(seconds are not comparable between rows run at different moments).\n\n"
                         + text + "\n")


if __name__ == "__main__":
    main()
