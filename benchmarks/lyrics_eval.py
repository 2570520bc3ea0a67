"""`lyrics_for` on 100 melodies from the music corpus's test split.

For each melody (the first 16 bars of a test piece; pieces drawn with a fixed seed, spread over
the styles) one set of lyrics is written (rhyme ABAB, 3 candidates per line, seed = index).
Reported: lines whose syllable count equals their phrase's note count, whole melodies matched,
rhyme fit, and how stressed syllables meet the beats -- against a random-lyrics baseline that
sets held-out verse lines of exactly the right syllable counts (drawn at random from the lyric
corpus's test split) on the same phrases, and against our writer with 1 candidate per line
(no stress-aware choice).

Also what a songwriter would strike (words outside the lexicon of `musegen.lyrics.lexicon`, words
missing from the CMU dictionary for reference, stray single letters, a word repeated right after
itself), stress per tempo class (melodies of >= 3 notes per beat vs slower), whether each stanza
(4 lines) carries its theme (themes cycle over THEMES; theme words or corpus associates,
`musegen.lyrics.theme`), seconds per melody, and a blind-read table: `--blind` sampled lines
next to as many random held-out verse lines of the same syllable counts.

    python -m benchmarks.lyrics_eval --corpus data/corpus-default --lyric-corpus data/lyrics-corpus \
        --out benchmarks/results/lyrics_for.md [--lyric-model PATH] [--n 100] [--no-one-candidate]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from benchmarks._report import emit

THEMES = ("the sea", "winter night", "home", "spring", "the river", "love", "the road", "morning")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-default"))
    ap.add_argument("--lyric-corpus", type=Path, default=Path("data/lyrics-corpus"))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--lyric-model", type=Path, default=None, help="lyric model folder (default: the shipped one)")
    ap.add_argument("--candidates", type=int, default=3)
    ap.add_argument("--no-one-candidate", action="store_true", help="skip the 1-candidate comparison run")
    ap.add_argument("--no-theme", action="store_true", help="write without themes (the old benchmark)")
    ap.add_argument("--blind", type=int, default=40, help="lines in the blind-read table")
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

    studio = Studio(threads=args.threads, lyric_model=str(args.lyric_model) if args.lyric_model else None)
    rows = {"ours": [], "ours, 1 candidate": [], "random held-out verse": []}
    if args.no_one_candidate:
        del rows["ours, 1 candidate"]
    struck = Struck(studio.lyric_lm)
    dense_rows: dict[str, list[dict]] = {"dense": [], "slower": []}
    theme_hits = [0, 0]
    all_lines: list[str] = []
    times = []
    line_fit = [0, 0]
    mel_fit = 0
    rhyme = []
    brng = random.Random(1)
    for k, (style, clip, tr, groups) in enumerate(chosen):
        ons = onsets_of(clip, tr)
        flags = strong_flags(clip, [s for s, _ in ons])
        strong = [flags[i] for g in groups for i in g]
        theme = None if args.no_theme else THEMES[k % len(THEMES)]
        t0 = time.perf_counter()
        take = studio.lyrics_for(clip, rhyme="ABAB", variations=1, seed=k, candidates=args.candidates, track=tr,
                                 theme=theme)[0]
        times.append(time.perf_counter() - t0)
        lines = take.params["lines"]
        all_lines += lines
        struck.add(lines)
        dense = notes_per_beat(clip, tr) >= 3
        dense_rows["dense" if dense else "slower"].append(stress_figures(lines, strong))
        if theme is not None:
            themes = theme_set(theme_words_of(theme))
            for s0 in range(0, len(lines), 4):
                theme_hits[0] += carries_theme(lines[s0:s0 + 4], themes)
                theme_hits[1] += 1
        counts = [len(line_syllables(ln)) for ln in lines]
        ok = [c == len(g) for c, g in zip(counts, groups)]
        line_fit[0] += sum(ok)
        line_fit[1] += len(groups)
        mel_fit += all(ok) and len(lines) == len(groups)
        if take.params["figures"]["rhyme_fit"] is not None:
            rhyme.append(take.params["figures"]["rhyme_fit"])
        rows["ours"].append(stress_figures(lines, strong))
        if not args.no_one_candidate:
            one = studio.lyrics_for(clip, rhyme="ABAB", variations=1, seed=k, candidates=1, track=tr, theme=theme)[0]
            rows["ours, 1 candidate"].append(stress_figures(one.params["lines"], strong))
        rand = [brng.choice(by_len[len(g)]) for g in groups]
        rows["random held-out verse"].append(stress_figures(rand, strong))
        print(f"{k + 1}/{len(chosen)} {style}: {len(groups)} phrases, {times[-1]:.2f} s, "
              f"fit {sum(ok)}/{len(groups)}, {'dense' if dense else 'slower'}", flush=True)

    def mean(name: str, key: str) -> float:
        return float(np.mean([r[key] for r in rows[name]]))

    styles_used = sorted({s for s, *_ in chosen})
    out = [
        f"# Lyrics for a melody: {len(chosen)} melodies from the test split", "",
        f"Device: cpu ({platform.machine()}, {__import__('os').cpu_count()} cores); torch {torch.__version__}, "
        f"transformers {version('transformers')}, Python {platform.python_version()}; lyric model "
        f"`{studio.lyric_lm.model_id}`; `python -m benchmarks.lyrics_eval {' '.join(sys.argv[1:])}`.", "",
        f"{len(chosen)} melodies (first {args.bars} bars of test-split pieces, fixed seed, at most {cap} per "
        f"style; styles: {', '.join(styles_used)}), {line_fit[1]} phrases, rhyme scheme ABAB, {args.candidates} "
        "candidates per line, one set of lyrics per melody.", "",
        "| figure | value |", "|---|---:|",
        f"| lines whose syllables = their phrase's notes | {line_fit[0]}/{line_fit[1]} "
        f"({100 * line_fit[0] / line_fit[1]:.1f} %) |",
        f"| melodies fully matched | {mel_fit}/{len(chosen)} ({100 * mel_fit / len(chosen):.1f} %) |",
        f"| rhyme pairs that rhyme (CMU rhyme class) | {100 * float(np.mean(rhyme)):.1f} % |",
        f"| seconds per melody, median / p95 | {np.median(times):.2f} / {np.percentile(times, 95):.2f} |",
        *struck.rows(),
        "| stanzas (4 lines) carrying their theme (theme word or corpus associate) | "
        + (f"{theme_hits[0]}/{theme_hits[1]} ({100 * theme_hits[0] / max(1, theme_hits[1]):.1f} %) |"
           if theme_hits[1] else "not measured (--no-theme) |"), "",
        "Stressed syllables on a beat per tempo class (mean over melodies; *dense*: at least 3 notes per "
        "felt beat over the melody's span):", "",
        "| class | melodies | alignment | stressed on a beat | alignment, sung | stressed on a beat, sung |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {c} | {len(r)} | "
          + " | ".join(f"{100 * float(np.mean([x[k] for x in r])):.1f} %" for k in
                       ("alignment", "stressed_on_beat", "alignment_sung", "stressed_on_beat_sung")) + " |"
          for c, r in dense_rows.items() if r],
        "",
        "Stress against the beats (a syllable is *stressed* when the CMU dictionary gives it primary or "
        "secondary stress; *sung*: the same, but a one-syllable function word such as \"of\", \"to\", "
        "\"in\", \"with\" is unstressed, as verse and song treat it and as the writer's stress bias and "
        "`melody_for` read it (CMU stresses them in their citation form); a note is *on a beat* when its "
        "onset is on a beat of its bar's metre, dotted quarters in 6/8). *Alignment*: share of syllables "
        "where stressed <=> on a beat. *Stressed on a beat*: share of stressed syllables that fall on a "
        "beat.", "",
        "| lyrics | alignment | stressed on a beat | alignment, sung | stressed on a beat, sung |",
        "|---|---:|---:|---:|---:|",
        *[f"| {name} | " + " | ".join(f"{100 * mean(name, k):.1f} %" for k in
                                      ("alignment", "stressed_on_beat", "alignment_sung", "stressed_on_beat_sung"))
          + " |" for name in rows], "",
        "The random baseline has exact syllable counts too (each phrase gets a random held-out verse line "
        "with its syllable count), so the difference is where the stresses fall, not how many syllables.",
        "", *blind_read(all_lines, by_len, args.blind),
    ]
    emit(out, args.out)


def notes_per_beat(clip: object, track: int) -> float:
    """Onsets per felt beat from the first onset to the last (`musegen.lyrics.phrasing.notes_per_beat`,
    repeated here so the benchmark also measures older code)."""
    from musegen.lyrics.phrasing import beat_ticks, onsets_of

    ons = onsets_of(clip, track)  # type: ignore[arg-type]
    ts = clip.time_signatures[0]  # type: ignore[attr-defined]
    beat = beat_ticks(ts.numerator, ts.denominator)
    span = max(ons[-1][0] - ons[0][0], beat) if ons else beat
    return len(ons) / (span / beat) if ons else 0.0


def theme_words_of(theme: str) -> list[str]:
    from musegen.lyrics import data as D
    from musegen.lyrics.syllables import words

    return [w.lower() for w in words(theme) if w.lower() not in D.STOPWORDS]


def theme_set(ws: list[str]) -> dict[str, float]:
    from musegen.lyrics.theme import theme_set as ts

    return ts(ws)


def carries_theme(lines: list[str], themes: dict[str, float]) -> bool:
    from musegen.lyrics.theme import carries_theme as ct

    return ct(lines, themes)


class Struck:
    """Counts of what a songwriter would strike in written lines."""

    def __init__(self, lm: object) -> None:
        from musegen.lyrics.lexicon import Lexicon
        from musegen.lyrics.lm import n_syllables
        from musegen.lyrics.rhyme import rhyme_index

        self.lex = Lexicon.from_freq(rhyme_index(lm).freq, n_syllables)  # type: ignore[arg-type]
        self.words = 0
        self.non_words: list[str] = []
        self.not_cmu: list[str] = []
        self.letters: list[str] = []
        self.repeats: list[str] = []

    def add(self, lines: list[str]) -> None:
        import re

        from musegen.lyrics.lexicon import cmu_words

        for ln in lines:
            ws = re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*'?|'[A-Za-z]+", ln)
            self.words += len(ws)
            for i, w in enumerate(ws):
                lw = w.lower().strip("'") if w.lower() not in ("'tis", "'twas") else w.lower()
                if not self.lex.knows(lw) and not self.lex.knows(w.lower()):
                    self.non_words.append(w)
                if lw not in cmu_words():
                    self.not_cmu.append(w)
                if len(lw) == 1 and lw not in ("a", "i", "o"):
                    self.letters.append(w)
                if i and lw == ws[i - 1].lower().strip("'"):
                    self.repeats.append(f"{ws[i - 1]} {w}")

    def rows(self) -> list[str]:
        def ex(xs: list[str]) -> str:
            return f" (e.g. {', '.join(sorted(set(xs))[:8])})" if xs else ""

        return [f"| words written | {self.words} |",
                f"| non-words (outside the lexicon: CMU dictionary + verse forms) | {len(self.non_words)}"
                f"{ex(self.non_words)} |",
                f"| ... for reference, words not in the CMU dictionary (archaic forms count here) | "
                f"{len(self.not_cmu)}{ex(self.not_cmu)} |",
                f"| stray single letters (not a, I, O) | {len(self.letters)}{ex(self.letters)} |",
                f"| padded repeats (a word right after itself) | {len(self.repeats)}{ex(self.repeats)} |"]


def blind_read(lines: list[str], by_len: dict[int, list[str]], n: int) -> list[str]:
    """`n` sampled written lines next to `n` random held-out verse lines of the same syllable
    counts, in a seeded random order per row (which side is which is given below the table)."""
    from musegen.lyrics.syllables import line_syllables

    if not lines or n <= 0:
        return []
    rng = random.Random(7)
    picked = rng.sample(lines, min(n, len(lines)))
    rows, key = [], []
    for i, ln in enumerate(picked, 1):
        real = rng.choice(by_len.get(len(line_syllables(ln)), ["-"]))
        ours_left = rng.random() < 0.5
        left, right = (ln, real) if ours_left else (real, ln)
        rows.append(f"| {i} | {left.replace('|', '/')} | {right.replace('|', '/')} |")
        key.append(f"{i}{'L' if ours_left else 'R'}")
    return ["## Blind read", "",
            f"{len(picked)} lines written above, each next to a random held-out verse line (never trained on) of "
            "the same syllable count; the sides are shuffled per row. Judge each row, then check the key.", "",
            "| # | left | right |", "|---:|---|---|", *rows, "",
            "Key (the side that musegen wrote): " + " ".join(key)]


if __name__ == "__main__":
    main()
