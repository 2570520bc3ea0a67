"""`Studio.arrange` on held-out music: chorales harmonized from their soprano, German folk
songs harmonized as chorales, one inner voice filled, and the speed against a continuation.

The pieces are the corpus's **test split**, computed the way `musegen corpus build` does it
(`musegen.corpus.grouping`: groups by title within a family and by the top line's melodic
fingerprint, split by a stable hash of the group id) over the `bach-chorale` and `german-folk`
styles of music21's bundled corpus: their MIDI is written once into `--cache` (music21 for the
chorales, abc2midi for the folk songs). A chorale whose melody Bach set twice lands in one
group, so a test chorale's tune is not in training under another BWV number. (Fingerprint joins
with the other ten styles are not computed here; titles only join within a family anyway.)

Figures (`musegen.evaluation.musicianship`, the same functions for takes and for Bach):
kept voice note-for-note identical, triads/7ths on beats, parallel 5ths + 8ves per bar, voice
crossings, SATB range share of the added voices, bass at or below tenor.

    python -m benchmarks.arrange --out benchmarks/results/arrange.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

from benchmarks._report import emit
from musegen.generate.fast import cpu_name

SEED = 2026
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "musegen" / "arrange-bench"


# ------------------------------------------------------------------ the test split
def _convert_chorale(job: tuple[str, str]) -> None:
    from musegen.corpus.sources import convert_m21_file

    src, target = Path(job[0]), Path(job[1])
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        convert_m21_file(src, target, timeout_s=60.0)


def test_split(cache: Path, workers: int = 2) -> dict[str, list[tuple[str, Path]]]:
    """{style: [(piece id, MIDI file), ...]} of the test split of bach-chorale and german-folk
    (cached in `cache/split.json`)."""
    index = cache / "split.json"
    if index.exists():
        d = json.loads(index.read_text())
        return {k: [(i, Path(p)) for i, p in v] for k, v in d.items()}
    from concurrent.futures import ProcessPoolExecutor

    from musegen.clip import Clip
    from musegen.corpus import abc as abc_mod
    from musegen.corpus.encode import top_line_fingerprint
    from musegen.corpus.grouping import assign_groups, split_of
    from musegen.corpus.sources import enumerate_style
    from musegen.corpus.styles import get_style

    pieces, jobs = [], []
    for name in ("bach-chorale", "german-folk"):
        p, j = enumerate_style(get_style(name), cache)
        pieces += p
        jobs += j
    m21 = [(str(j.source), str(j.target)) for j in jobs if j.kind == "music21"]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_convert_chorale, m21, chunksize=8))
    for j in jobs:
        if j.kind == "abc" and not abc_mod.is_converted(j.target):
            abc_mod.convert_abc_file(j.source, j.target, use_abc2midi=True)
    rows = []
    for p in pieces:
        fp = None
        if p.skip is None and p.midi.exists():
            try:
                fp = top_line_fingerprint(Clip.load(p.midi))
            except Exception:  # noqa: BLE001 - an unreadable file is left out, as the build does
                continue
        rows.append({"id": p.id, "family": p.family, "title": p.title, "fingerprint": fp,
                     "style": p.style, "midi": str(p.midi), "ok": fp is not None})
    groups = assign_groups(rows)
    out: dict[str, list] = {"bach-chorale": [], "german-folk": []}
    for r in rows:
        if r["ok"] and split_of(groups[r["id"]]) == "test":
            out[r["style"]].append((r["id"], r["midi"]))
    cache.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps(out, indent=1))
    return {k: [(i, Path(p)) for i, p in v] for k, v in out.items()}


# ------------------------------------------------------------------ the pieces
BARS = 8  # bars arranged per piece (the first ones)


def four_voices(path: Path) -> object | None:
    """A test chorale as a four-track clip (S, A, T, B by register), its first `BARS` bars;
    None when it is not four voices in 4/4-like metre the tokenizer holds."""
    from musegen.clip import Clip
    from musegen.evaluation import musicianship as M

    clip = Clip.load(path)
    order = M.voice_order(clip)
    if len(order) != 4 or clip.n_bars < 4:
        return None
    clip = replace(clip, tracks=tuple(clip.tracks[i] for i in order))
    return clip.slice_bars(0, min(BARS, clip.n_bars))


def folk_melody(path: Path, tok: object = None) -> object | None:
    """A one-voice song in a metre the tokenizer holds, its first `BARS` bars; else None.

    abc2midi starts every note one tick late (a note_on one tick after the previous note_off:
    its articulation gap), so the melody it writes sounds at no beat's exact tick and the
    on-beat figures would read every beat as the melody resting. A musician's melody from a
    DAW sits on the grid: with `tok` (a `Tokenizer`) the song is snapped to its token grid
    (`tok.quantize`, what the corpus build and the model see), as the musician would give it."""
    from musegen.clip import Clip
    from musegen.tokenizer.vocab import TIME_SIGNATURES

    clip = Clip.load(path)
    tracks = [t for t in clip.tracks if t.notes and not t.is_drum]
    if len(tracks) != 1 or clip.n_bars < 6 or any(
            (ts.numerator, ts.denominator) not in TIME_SIGNATURES for ts in clip.time_signatures):
        return None
    clip = replace(clip, tracks=tuple(tracks)).slice_bars(0, min(BARS, clip.n_bars))
    return tok.quantize(clip) if tok is not None else clip


# ------------------------------------------------------------------ the figures
def figures(clip: object, order: list[int], added: list[int], roles: list[str]) -> dict:
    """The musicianship figures of one four-voice clip (tracks high to low = `order`); the
    range share counts the `added` tracks' notes, each against its role's SATB range."""
    from musegen.evaluation import musicianship as M

    ranges = dict(zip(("soprano", "alto", "tenor", "bass"), M.SATB_RANGES))
    inside = [lo <= n.pitch <= hi for t in added for lo, hi in [ranges[roles[t]]]
              for n in clip.tracks[t].notes]
    return {"chord_on_beat": M.chord_on_beat_share(clip),
            "parallels_per_bar": M.parallel_fifths_per_bar(clip) + M.parallel_octaves_per_bar(clip),
            "crossings": M.voice_crossing_share(clip, order),
            "added_in_range": (sum(inside) / len(inside)) if inside else None,
            "bass_below_tenor": M.bass_below_tenor_share(clip, order)}


def mean(rows: list[dict], name: str) -> float | None:
    xs = [r[name] for r in rows if r.get(name) is not None]
    return statistics.fmean(xs) if xs else None


def fmt(x: float | None, pct: bool = True) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f} %" if pct else f"{x:.3f}"


# ------------------------------------------------------------------ the runs
def run_soprano(studio: object, chorales: list, variations: int) -> tuple[list, list, dict]:
    """Each chorale's soprano harmonized (lower three removed) vs Bach's own."""
    takes_rows, bach_rows, kept = [], [], {"same": 0, "takes": 0, "lost_tokens": 0}
    for k, (_pid, clip) in enumerate(chorales):
        melody = replace(clip, tracks=clip.tracks[:1])
        takes = studio.arrange(melody, add="satb", style="bach-chorale", variations=variations,
                               seed=SEED + k, roles=["soprano"])
        for t in takes:
            kept["takes"] += 1
            kept["same"] += t.clip.tracks[0].notes == clip.tracks[0].notes
            kept["lost_tokens"] += int(t.params.get("kept_tokens_lost", 0))
            takes_rows.append(figures(t.clip, [0, 1, 2, 3], [1, 2, 3], t.params["roles"]))
        bach_rows.append(figures(clip, [0, 1, 2, 3], [1, 2, 3], ["soprano", "alto", "tenor", "bass"]))
    return takes_rows, bach_rows, kept


def run_folk(studio: object, songs: list, variations: int) -> tuple[list, dict, list]:
    rows, kept, takes_out = [], {"same": 0, "takes": 0, "lost_tokens": 0}, []
    for k, (pid, clip) in enumerate(songs):
        takes = studio.arrange(clip, add="satb", style="bach-chorale", variations=variations,
                               seed=SEED + 100 + k, roles=["soprano"])
        for t in takes:
            kept["takes"] += 1
            kept["same"] += t.clip.tracks[0].notes == clip.tracks[0].notes
            kept["lost_tokens"] += int(t.params.get("kept_tokens_lost", 0))
            rows.append(figures(t.clip, [0, 1, 2, 3], [1, 2, 3], t.params["roles"]))
        takes_out.append((pid, clip, takes[0]))
    return rows, kept, takes_out


def run_fill(studio: object, chorales: list, role: str, variations: int) -> tuple[list, list, dict]:
    """One voice of each chorale removed and filled (`role`: alto or bass)."""
    gone = ("soprano", "alto", "tenor", "bass").index(role)
    keep = [i for i in range(4) if i != gone]
    rows, bach, kept = [], [], {"same": 0, "takes": 0, "lost_tokens": 0}
    roles = [r for r in ("soprano", "alto", "tenor", "bass") if r != role]
    for k, (_pid, clip) in enumerate(chorales):
        takes = studio.arrange(clip, keep=keep, roles=roles, add=role, style="bach-chorale",
                               variations=variations, seed=SEED + 200 + k)
        for t in takes:
            kept["takes"] += 1
            kept["same"] += all(t.clip.tracks[i].notes == clip.tracks[i].notes for i in keep)
            kept["lost_tokens"] += int(t.params.get("kept_tokens_lost", 0))
            rows.append(dict(figures(t.clip, [0, 1, 2, 3], [gone], t.params["roles"]),
                             filled_on_chord=filled_on_chord(t.clip, gone)))
        bach.append(dict(figures(clip, [0, 1, 2, 3], [gone], ["soprano", "alto", "tenor", "bass"]),
                         filled_on_chord=filled_on_chord(clip, gone)))
    return rows, bach, kept


def filled_on_chord(clip: object, track: int) -> float | None:
    """Of the beats where the filled voice starts a note and all four voices sound: the share
    where the four make a plain triad or seventh chord (`musicianship.CHORDS`)."""
    from musegen.evaluation import musicianship as M

    ok = n = 0
    onsets = {x.start_tick for x in clip.tracks[track].notes}
    for tick in M.beat_ticks(clip):
        if tick not in onsets:
            continue
        ps = [M.sounding(t, tick) for t in clip.tracks]
        if any(p is None for p in ps):
            continue
        n += 1
        ok += frozenset(p % 12 for p in ps) in M.CHORDS
    return ok / n if n else None


def renaissance_pieces(studio: object, corpus_dir: Path) -> list:
    """The four-voice pieces of the built corpus's `renaissance-mass` test split (Palestrina)
    whose four voices all sound in the first `BARS` bars, their tracks high to low."""
    from musegen.corpus import Corpus
    from musegen.evaluation import musicianship as M

    corpus = Corpus.open(corpus_dir)
    names, tok = corpus.style_names, studio.engine.tok  # type: ignore[attr-defined]
    out = []
    for s, ids in corpus.split("test"):
        if names[s] != "renaissance-mass":
            continue
        clip = tok.decode(ids)
        if clip.n_bars < BARS:
            continue
        clip = clip.slice_bars(0, BARS)
        tracks = [clip.tracks[i] for i in M.voice_order(clip)]
        if len(tracks) == 4 and all(t.notes for t in tracks):
            out.append(replace(clip, tracks=tuple(tracks)))
    return out


def filled_crossings(clip: object, track: int) -> float | None:
    """Of the eighth-note moments where the filled voice `track` and another voice sound: the
    share where it sounds above a voice ranked above it or below one ranked below (tracks
    high to low); the crossings among the kept voices are the composer's and not counted."""
    from musegen.evaluation import musicianship as M

    n = crossed = 0
    for tick in M._grid(clip, M.MOMENT_TICKS):
        p = M.sounding(clip.tracks[track], tick)
        others = [(u, M.sounding(tr, tick)) for u, tr in enumerate(clip.tracks) if u != track]
        others = [(u, q) for u, q in others if q is not None]
        if p is None or not others:
            continue
        n += 1
        crossed += any((u < track and q < p) or (u > track and q > p) for u, q in others)
    return crossed / n if n else None


def run_renaissance(studio: object, pieces: list, role: str, variations: int) -> tuple[list, list, dict]:
    """One voice (`role`: alto or tenor) of each four-voice Palestrina piece removed and filled
    in `renaissance-mass` style, against Palestrina's own voice."""
    gone = ("soprano", "alto", "tenor", "bass").index(role)
    keep = [i for i in range(4) if i != gone]
    roles = [r for r in ("soprano", "alto", "tenor", "bass") if r != role]
    rows, real, kept = [], [], {"same": 0, "takes": 0, "lost_tokens": 0}
    for k, clip in enumerate(pieces):
        takes = studio.arrange(clip, keep=keep, roles=roles, add=role,  # type: ignore[attr-defined]
                               style="renaissance-mass", variations=variations, seed=SEED + 300 + k)
        for t in takes:
            kept["takes"] += 1
            kept["same"] += all(t.clip.tracks[i].notes == clip.tracks[i].notes for i in keep)
            kept["lost_tokens"] += int(t.params.get("kept_tokens_lost", 0))
            rows.append(dict(figures(t.clip, [0, 1, 2, 3], [gone], t.params["roles"]),
                             filled_on_chord=filled_on_chord(t.clip, gone),
                             filled_crossings=filled_crossings(t.clip, gone)))
        real.append(dict(figures(clip, [0, 1, 2, 3], [gone], ["soprano", "alto", "tenor", "bass"]),
                         filled_on_chord=filled_on_chord(clip, gone),
                         filled_crossings=filled_crossings(clip, gone)))
    return rows, real, kept


class unheard:
    """The arrangement as it was before the voice-leading rules heard the kept voices ahead:
    inside this block an added voice hears only what the token stream has written (for the
    lookahead comparison of section 5; the library has no such switch, so the two methods are
    replaced for the block)."""

    def __enter__(self) -> None:
        from musegen.generate.constraints import VoiceLeading

        self.saved = VoiceLeading._foreseen, VoiceLeading._held
        VoiceLeading._foreseen = lambda self, vs, at: vs  # type: ignore[method-assign]
        VoiceLeading._held = lambda self, *a: None  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        from musegen.generate.constraints import VoiceLeading

        VoiceLeading._foreseen, VoiceLeading._held = self.saved  # type: ignore[method-assign]


def run_speed(studio: object, melody: object, chorale: object, reps: int) -> dict:
    """Seconds of an 8-bar arrangement x 4 and of 8-bar continuations x 4 (of the melody, and
    of the four-voice chorale), alternating, `reps` times each; medians."""
    t: dict[str, list[float]] = {"arrange": [], "continue_melody": [], "continue_chorale": []}
    n: dict[str, list[int]] = {k: [] for k in t}  # tokens per take (one decode step each)
    for r in range(reps):
        for name in t:
            t0 = time.perf_counter()
            if name == "arrange":
                takes = studio.arrange(melody, add="satb", style="bach-chorale", variations=4, seed=r)
            elif name == "continue_melody":
                takes = studio.continue_(melody, bars=BARS, variations=4, style="bach-chorale", seed=r)
            else:
                takes = studio.continue_(chorale, bars=BARS, variations=4, style="bach-chorale", seed=r)
            t[name].append(time.perf_counter() - t0)
            n[name] += [len(x.tokens) for x in takes]
    return {k: statistics.median(v) for k, v in t.items()} | {"all": t} | {
        "tokens": {k: statistics.median(v) for k, v in n.items()}}


# ------------------------------------------------------------------ the report
ROWS = (("triads/7ths on beats", "chord_on_beat", True, "≥ 60 %"),
        ("parallel 5ths + 8ves per bar", "parallels_per_bar", False, "≤ 0.05"),
        ("voice crossings (eighth-note moments)", "crossings", True, "≤ 1 %"),
        ("added notes in their SATB range", "added_in_range", True, "≥ 98 %"),
        ("bass at or below tenor", "bass_below_tenor", True, "100 %"))


def table(cols: dict[str, list[dict]], extra: tuple = ()) -> list[str]:
    names = list(cols)
    out = ["| figure | " + " | ".join(names) + " | target |", "|---" * (len(names) + 2) + "|"]
    for label, key, pct, target in (*ROWS, *extra):
        out.append(f"| {label} | " + " | ".join(fmt(mean(cols[n], key), pct) for n in names)
                   + f" | {target} |")
    return out


def kept_line(k: dict) -> str:
    return (f"kept voices note-for-note identical: {k['same']}/{k['takes']} takes "
            f"({100 * k['same'] / max(1, k['takes']):.0f} %); kept notes the token stream missed: "
            f"{k['lost_tokens']}")


def renaissance_section(res: dict, n: int, corpus: Path) -> list[str]:
    head = ["## 6. A Renaissance texture missing a voice", ""]
    if not n:
        return head + [f"Skipped: no built corpus at `{corpus}` (`musegen corpus build`).", ""]
    extra = (("filled voice's beats making a plain chord", "filled_on_chord", True, "-"),
             ("filled voice crossing another (eighth-note moments)", "filled_crossings", True, "-"))
    (a, a_real, a_kept), (t, t_real, t_kept) = res["alto"], res["tenor"]
    return head + [
        f"The {n} four-voice pieces of the built corpus's `renaissance-mass` test split (Palestrina "
        f"mass movements; `{corpus}`) whose four voices all sound in the first {BARS} bars: the "
        "alto, then the tenor, removed and filled in `renaissance-mass` style, beside "
        "Palestrina's own voice.", "",
        kept_line(a_kept) + " (alto fill)  ", kept_line(t_kept) + " (tenor fill)", "",
        *table({"alto filled": a, "Palestrina (alto)": a_real, "tenor filled": t,
                "Palestrina (tenor)": t_real}, extra), "",
        "The chorale targets are shown for reference only: Palestrina's voices cross (his alto "
        "and tenor cross a neighbour at 10-20 % of moments) and his alto and tenor do not keep "
        "to chorale SATB ranges, while the filled voice keeps the no-crossing rule first and "
        "its SATB range second (the range row counts the filled voice only).", ""]


def future_section(res: dict) -> list[str]:
    """What not seeing the kept voices' future costs, and what hearing them ahead buys
    (measured: filling the alto, which the token order writes before the kept tenor and bass
    of each onset, with and without the voice-leading rules hearing the kept notes ahead,
    against filling the bass, written after every kept voice of its onset), and what a
    track-infilling objective would add."""
    cols = [("bass (every kept voice of the onset already written)", res["bass"]),
            ("alto, kept notes heard ahead (the rules know the template)", res["alto"]),
            ("alto, only what the token stream has written (before)", res.get("alto_unheard", []))]
    ba, bb = mean(res["alto_bach"], "filled_on_chord"), mean(res["bass_bach"], "filled_on_chord")
    heard, deaf = mean(res["alto"], "filled_on_chord"), mean(res.get("alto_unheard", []), "filled_on_chord")
    rows = [f"| {name} | {fmt(mean(r, 'filled_on_chord'))} | {fmt(mean(r, 'parallels_per_bar'), False)} "
            f"| {fmt(mean(r, 'crossings'))} |" for name, r in cols if r]
    verdict = ("So it matters, and the rules can supply most of it: " if heard is not None and
               deaf is not None and heard > deaf + 0.03 else "In this run hearing ahead changes little: ")
    return [
        "## 5. Does it matter that the model cannot see the kept voices' future?", "",
        "The model reads left to right, and at an onset the tokens go track by track (S, A, T, "
        "B). Filling the **bass**, every kept voice of the onset is already written when the "
        "model picks the bass note; filling the **alto**, the kept tenor and bass of that same "
        "onset (and everything later) are still unseen by the model, though the arrangement "
        "knows them. The voice-leading rules now hear them ahead: at an onset the crossing, "
        "parallel and chord rules count the kept notes struck there, and an added note may not "
        "be held across a kept voice that moves past it later (`VoiceLeading._foreseen`, "
        "`_held`). Same chorales, same seeds, measured in the same run:", "",
        "| filled voice | its beats making a plain chord | parallels per bar | crossings |",
        "|---|---|---|---|", *rows,
        f"| Bach's own bass / alto | {fmt(bb)} / {fmt(ba)} | - | - |", "",
        verdict + f"the alto's beats on a plain chord go {fmt(deaf)} -> {fmt(heard)} when the "
        "rules hear the kept notes ahead. What the rules cannot give is the model's own "
        "planning toward the kept voices' future: harmonizing a melody, the soprano comes "
        "first at each onset, so only its *later* notes are unseen (cadences are not prepared, "
        "a bass does not step toward where the tune goes).", "",
        "**For the retraining issue: a track-infilling objective.** Train on examples "
        "`header KEPT <kept tracks' tokens of the region> FILL_START <the region, all tracks "
        "interleaved> FILL_END`, the kept tracks a random subset of a piece's tracks (made "
        "from the existing corpus: no new data; one new special token, a tokenizer version "
        "bump). At sampling time the prefix is the musician's tracks, and `KeepVoices` still "
        "forces them in the interleaved part, so validity and note-for-note identity are "
        "unchanged. It would buy: (1) every added note chosen knowing the kept voices at its "
        "own onset and after it, by the model rather than by rules that only narrow its "
        "draw; (2) cadences and bass "
        "lines planned toward where the melody goes, which no constraint can do; (3) fewer "
        "draws the voice-leading constraint has to correct. Cost: the kept tokens appear twice "
        "in the context (512 tokens holds about half as many bars), and a training mix "
        "(e.g. a fifth of the examples) so plain continuation does not lose quality.", ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    ap.add_argument("--cache", type=Path, default=CACHE, help="MIDI of the test split (built once)")
    ap.add_argument("--variations", type=int, default=2, help="takes per piece")
    ap.add_argument("--chorales", type=int, default=0, help="at most this many chorales (0: all)")
    ap.add_argument("--folk", type=int, default=10, help="folk songs harmonized")
    ap.add_argument("--reps", type=int, default=3, help="speed: runs of each request")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for decoding")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-default"),
                    help="built corpus whose renaissance-mass test split section 6 fills "
                         "(skipped when there is none)")
    args = ap.parse_args(argv)

    import torch

    from musegen.studio import Studio

    split = test_split(args.cache)
    chorales = [(pid, c) for pid, path in split["bach-chorale"] if (c := four_voices(path)) is not None]
    if args.chorales:
        chorales = chorales[:args.chorales]
    studio = Studio(device="cpu", threads=args.threads)
    songs = []
    for pid, path in sorted(split["german-folk"]):
        c = folk_melody(path, studio.engine.tok)
        if c is not None:
            songs.append((pid, c))
        if len(songs) == args.folk:
            break
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    sop_takes, sop_bach, sop_kept = run_soprano(studio, chorales, args.variations)
    folk_rows, folk_kept, folk_takes = run_folk(studio, songs, args.variations)
    alto_rows, alto_bach, alto_kept = run_fill(studio, chorales, "alto", args.variations)
    bass_rows, bass_bach, bass_kept = run_fill(studio, chorales, "bass", args.variations)
    with unheard():
        deaf_rows, _, _ = run_fill(studio, chorales, "alto", args.variations)
    ren = renaissance_pieces(studio, args.corpus) if (args.corpus / "summary.json").exists() else []
    ren_res = {role: run_renaissance(studio, ren, role, args.variations) for role in ("alto", "tenor")}
    melody = replace(chorales[0][1], tracks=chorales[0][1].tracks[:1])
    speed = run_speed(studio, melody, chorales[0][1], args.reps)
    total = time.perf_counter() - t0

    fill_extra = (("filled voice's beats making a plain chord", "filled_on_chord", True, "-"),)
    lines = [
        "# Arrange: adding voices to held-out melodies (`python -m benchmarks.arrange`)", "",
        f"Command: `python -m benchmarks.arrange --variations {args.variations} --folk {args.folk} "
        f"--reps {args.reps} --threads {args.threads} --out benchmarks/results/arrange.md`  ",
        f"Machine: {platform.platform()} ({cpu_name()}), {os.cpu_count()} CPU cores, load average "
        f"{load0:.1f} at the start and {os.getloadavg()[0]:.1f} at the end, torch {torch.__version__} "
        f"({args.threads} thread), "
        f"musegen {version('musegen')}, model {studio.model_id}; python {platform.python_version()}. "
        f"Whole run {total / 60:.1f} min.", "",
        f"Pieces: the test split of `bach-chorale` ({len(split['bach-chorale'])} pieces; "
        f"{len(chorales)} of them four voices) and `german-folk` ({len(split['german-folk'])} songs; "
        f"the first {len(songs)} one-voice ones by id), computed as `musegen corpus build` splits "
        "(see the module doc). The first "
        f"{BARS} bars of each, {args.variations} takes per piece, seeds from {SEED}, "
        "style `bach-chorale`, default temperature and top-p, voice leading on (auto).", "",
        "## 1. Chorales: soprano kept, alto, tenor and bass written", "",
        kept_line(sop_kept), "",
        *table({"arrange (takes)": sop_takes, "Bach's own": sop_bach}), "",
        "## 2. German folk songs (Essen, test split) harmonized as chorales", "",
        kept_line(folk_kept), "",
        *table({"arrange (takes)": folk_rows}), "",
        "Songs: " + ", ".join(f"`{pid}`" for pid, _ in songs) + ".", "",
        "## 3. Filling one missing voice of a chorale", "",
        "Alto removed (S, T, B kept) and bass removed (S, A, T kept), each written back:", "",
        kept_line(alto_kept) + " (alto fill)  ", kept_line(bass_kept) + " (bass fill)", "",
        *table({"alto filled": alto_rows, "Bach (alto)": alto_bach, "bass filled": bass_rows,
                "Bach (bass)": bass_bach}, fill_extra), "",
        "(the range row counts the filled voice only)", "",
        "## 4. Speed (same run, alternating, median of "
        f"{args.reps})", "",
        "| request | median s |", "|---|---|",
        f"| arrange 8 bars x 4 variations (melody -> S A T B) | {speed['arrange']:.2f} |",
        f"| continue 8 bars x 4 of the melody (one voice) | {speed['continue_melody']:.2f} |",
        f"| continue 8 bars x 4 of the four-voice chorale | {speed['continue_chorale']:.2f} |", "",
        f"arrange / continuation of the melody: **{speed['arrange'] / speed['continue_melody']:.2f}x** "
        f"(target ≤ 2x); arrange / continuation of the four voices: "
        f"{speed['arrange'] / speed['continue_chorale']:.2f}x.", "",
        "Tokens per take (each one decode step; median): arrange "
        f"{speed['tokens']['arrange']:.0f} (the kept melody's tokens are forced, but each is still "
        f"a step), continuation of the melody {speed['tokens']['continue_melody']:.0f}, of the four "
        f"voices {speed['tokens']['continue_chorale']:.0f}. The arrangement writes four voices where "
        "the melody's continuation writes one, so at the same cost per step it cannot come "
        "within 2x of it; feeding the forced tokens several per step would save at most the "
        "melody's share of the steps.", "",
    ]
    res = {"renaissance": {r: [v[0], v[1]] for r, v in ren_res.items()},
           "soprano": sop_takes, "bach": sop_bach, "folk": folk_rows, "alto": alto_rows,
           "alto_bach": alto_bach, "alto_unheard": deaf_rows, "bass": bass_rows, "bass_bach": bass_bach, "speed": speed,
           "kept": [sop_kept, folk_kept, alto_kept, bass_kept]}
    emit(lines + future_section(res) + renaissance_section(ren_res, len(ren), args.corpus), args.out)
    (args.cache / "results.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--analysis-only"]:
    # the section 5 of a report written by a run that had none, from that run's results.json
    out = Path(sys.argv[2])
    out.write_text(out.read_text() + "\n".join(future_section(json.loads(
        (CACHE / "results.json").read_text()))) + "\n")
    sys.exit(0)
if __name__ == "__main__" and sys.argv[1:2] == ["--split-only"]:
    s = test_split(CACHE)
    print({k: len(v) for k, v in s.items()})
    sys.exit(0)
if __name__ == "__main__":
    sys.exit(main())
