"""`lyrics_for` on 100 melodies from the music corpus's test split.

For each melody (the first 16 bars of a test piece; pieces drawn with a fixed seed, spread over
the styles) one set of lyrics is written (rhyme ABAB, 3 candidates per line, seed = index).
Reported: lines whose syllable count equals their phrase's note count, whole melodies matched,
rhyme fit, and how stressed syllables meet the beats -- against a random-lyrics baseline that
sets held-out verse lines of exactly the right syllable counts (drawn at random from the lyric
corpus's test split) on the same phrases, and against our writer with 1 candidate per line
(no stress-aware choice).

    python -m benchmarks.lyrics_eval --corpus data/corpus-default --lyric-corpus data/lyrics-corpus \
        --out benchmarks/results/lyrics_for.md
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from benchmarks._report import emit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-default"))
    ap.add_argument("--lyric-corpus", type=Path, default=Path("data/lyrics-corpus"))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from musegen.corpus.dataset import Corpus
    from musegen.lyrics.syllables import line_syllables
    from musegen.lyrics.writer import melody_track, onsets_of, phrases, stress_figures, strong_flags
    from musegen.studio import Studio

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = Corpus.open(args.corpus)
    tok = corpus.tokenizer()
    names = corpus.style_names
    rng = random.Random(0)
    test = corpus.split("test")
    order = list(range(len(test)))
    rng.shuffle(order)
    per_style: dict[int, int] = {}
    chosen = []
    cap = max(1, args.n // len(names) + 4)
    for i in order:  # spread over the styles: at most `cap` per style
        si, ids = test[i]
        if per_style.get(si, 0) >= cap:
            continue
        clip = tok.decode(ids)
        clip = clip.slice_bars(0, min(args.bars, clip.n_bars))
        try:
            tr = melody_track(clip)
            groups = phrases(clip, tr)
        except Exception:  # noqa: BLE001 - a piece without a usable melody is skipped, counted
            continue
        if len(groups) > 64:
            continue
        chosen.append((names[si], clip, tr, groups))
        per_style[si] = per_style.get(si, 0) + 1
        if len(chosen) == args.n:
            break

    by_len: dict[int, list[str]] = {}
    with open(args.lyric_corpus / "test_lines.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            by_len.setdefault(r["syllables"], []).append(r["text"])

    studio = Studio(threads=args.threads)
    rows = {"ours": [], "ours, 1 candidate": [], "random held-out verse": []}
    times = []
    line_fit = [0, 0]
    mel_fit = 0
    rhyme = []
    brng = random.Random(1)
    for k, (style, clip, tr, groups) in enumerate(chosen):
        ons = onsets_of(clip, tr)
        flags = strong_flags(clip, [s for s, _ in ons])
        strong = [flags[i] for g in groups for i in g]
        t0 = time.perf_counter()
        take = studio.lyrics_for(clip, rhyme="ABAB", variations=1, seed=k, candidates=3, track=tr)[0]
        times.append(time.perf_counter() - t0)
        lines = take.params["lines"]
        counts = [len(line_syllables(ln)) for ln in lines]
        ok = [c == len(g) for c, g in zip(counts, groups)]
        line_fit[0] += sum(ok)
        line_fit[1] += len(groups)
        mel_fit += all(ok) and len(lines) == len(groups)
        if take.params["figures"]["rhyme_fit"] is not None:
            rhyme.append(take.params["figures"]["rhyme_fit"])
        rows["ours"].append(stress_figures(lines, strong))
        one = studio.lyrics_for(clip, rhyme="ABAB", variations=1, seed=k, candidates=1, track=tr)[0]
        rows["ours, 1 candidate"].append(stress_figures(one.params["lines"], strong))
        rand = [brng.choice(by_len[len(g)]) for g in groups]
        rows["random held-out verse"].append(stress_figures(rand, strong))
        print(f"{k + 1}/{len(chosen)} {style}: {len(groups)} phrases, {times[-1]:.2f} s, "
              f"fit {sum(ok)}/{len(groups)}", flush=True)

    def mean(name: str, key: str) -> float:
        return float(np.mean([r[key] for r in rows[name]]))

    styles_used = sorted({s for s, *_ in chosen})
    out = [
        "# Lyrics for a melody: 100 melodies from the test split", "",
        f"Device: cpu ({platform.machine()}, {__import__('os').cpu_count()} cores); torch {torch.__version__}, "
        f"transformers {version('transformers')}, Python {platform.python_version()}; lyric model "
        f"`{studio.lyric_lm.model_id}`; `python -m benchmarks.lyrics_eval --corpus {args.corpus} "
        f"--lyric-corpus {args.lyric_corpus}`.", "",
        f"{len(chosen)} melodies (first {args.bars} bars of test-split pieces, fixed seed, at most {cap} per "
        f"style; styles: {', '.join(styles_used)}), {line_fit[1]} phrases, rhyme scheme ABAB, 3 candidates "
        "per line, one set of lyrics per melody.", "",
        "| figure | value |", "|---|---:|",
        f"| lines whose syllables = their phrase's notes | {line_fit[0]}/{line_fit[1]} "
        f"({100 * line_fit[0] / line_fit[1]:.1f} %) |",
        f"| melodies fully matched | {mel_fit}/{len(chosen)} ({100 * mel_fit / len(chosen):.1f} %) |",
        f"| rhyme pairs that rhyme (CMU rhyme class) | {100 * float(np.mean(rhyme)):.1f} % |",
        f"| seconds per melody, median / p95 | {np.median(times):.2f} / {np.percentile(times, 95):.2f} |", "",
        "Stress against the beats (a syllable is *stressed* when the CMU dictionary gives it primary or "
        "secondary stress; a note is *on a beat* when its onset is on a beat of its bar's metre, dotted "
        "quarters in 6/8). *Alignment*: share of syllables where stressed <=> on a beat. *Stressed on a "
        "beat*: share of stressed syllables that fall on a beat.", "",
        "| lyrics | alignment | stressed on a beat |", "|---|---:|---:|",
        *[f"| {name} | {100 * mean(name, 'alignment'):.1f} % | {100 * mean(name, 'stressed_on_beat'):.1f} % |"
          for name in rows], "",
        "The random baseline has exact syllable counts too (each phrase gets a random held-out verse line "
        "with its syllable count), so the difference is where the stresses fall, not how many syllables.",
    ]
    emit(out, args.out)


if __name__ == "__main__":
    main()
