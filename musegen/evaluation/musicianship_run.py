"""The musicianship benchmark's core: takes against the real music they continue, per style
family, for continue, regenerate (infill), blend and from nothing.

`run(studio, corpus, cfg)` measures and returns a JSON-able dict; `markdown(result)` renders
it. Shared by `python -m benchmarks.musicianship` (the command line), `musegen eval
--musicianship` and the model card. The figures themselves are `musegen.evaluation.
musicianship`; nothing here prints.

Protocol. Test-split pieces of every style of the model, taken round-robin over the styles of
each family (monophonic folk, chorale, Renaissance polyphony, any other style its own
family), in split order, among those long enough: a prompt of the first 4 (or 8) bars, the
real next `bars` bars as the reference, `takes` takes per prompt and seed. Infill: bars 3-4
of an 8-bar excerpt regenerated, the seams judged against the original. Blends and starts
from nothing are judged against each style's real test pieces (their first `bars` bars).
Every figure is given per seed and as the mean over seeds with its min..max.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from musegen.clip import Clip
from musegen.evaluation import musicianship as mus

FAMILY_OF = {"bach-chorale": "chorale", "renaissance-mass": "renaissance",
             "madrigal": "renaissance", "trecento": "renaissance"}
FOLK_FAMILIES = ("essen", "celtic")  # the registry's families of monophonic folk styles
BLEND_PAIRS = (("chinese-folk", "bach-chorale"), ("scottish-air", "renaissance-mass"),
               ("irish-dance", "bach-chorale"))
OFF_SWITCHES: dict[str, object] = {
    "voice_leading": "off", "cadence": "none", "motif": 0.0, "motif_reuse": 0.0,
    "keep_voices": False, "idiomatic": False, "form": None,
}
"""Generation parameters that turn a decoding constraint off, by name: `--no-constraints`
passes each one the operation accepts (`musegen.params.params_for`); the others are skipped,
so the benchmark runs before and after a constraint exists."""


@dataclass(frozen=True)
class MusicianshipConfig:
    """How much to measure. `quick_config()` is a smoke test of a minute or two."""

    pieces_per_family: int = 4
    prompt_bars: tuple[int, ...] = (4, 8)
    bars: int = 8
    takes: int = 4
    seeds: tuple[int, ...] = (0, 1)
    infill: tuple[int, int] = (3, 4)  # 1-based bars of an 8-bar excerpt
    infill_pieces_per_family: int = 2
    blend_pairs: tuple[tuple[str, str], ...] = BLEND_PAIRS
    blend_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    blend_takes: int = 4
    nothing_takes: int = 4
    nothing_per_family: int | None = None  # styles started from nothing per family (None: all)
    real_pieces_per_style: int = 40  # for keys, tempi and blend centroids
    gen_kwargs: dict = field(default_factory=dict)  # extra generation parameters, every request
    no_constraints: bool = False  # pass OFF_SWITCHES
    quick: bool = False

    @classmethod
    def quick_config(cls, **kw: Any) -> MusicianshipConfig:
        return cls(**{"pieces_per_family": 2, "prompt_bars": (4,), "seeds": (0,),
                      "infill_pieces_per_family": 1, "blend_pairs": BLEND_PAIRS[:1],
                      "blend_weights": (0.0, 0.5, 1.0), "blend_takes": 2, "nothing_takes": 2,
                      "nothing_per_family": 1, "real_pieces_per_style": 10, "quick": True, **kw})


def family(style: str) -> str:
    """'folk' for the registry's Essen and Celtic styles, 'chorale', 'renaissance', or the
    style's own name for any other (a user style)."""
    if style in FAMILY_OF:
        return FAMILY_OF[style]
    from musegen.corpus.styles import get_style

    try:
        return "folk" if get_style(style).family in FOLK_FAMILIES else style
    except KeyError:
        return style


def generation_kwargs(op: str, cfg: MusicianshipConfig) -> dict:
    """The extra keywords of an `op` request: with `cfg.no_constraints` the `OFF_SWITCHES`
    that `op` accepts, then `cfg.gen_kwargs` (which win), each only where `op` accepts it;
    a name no operation accepts is a `ParameterError`."""
    from musegen.errors import ParameterError
    from musegen.params import NAMES, params_for

    unknown = sorted(k for k in cfg.gen_kwargs if k not in NAMES)
    if unknown:
        raise ParameterError(f"unknown generation parameter(s): {', '.join(unknown)}")
    accepted = params_for(op)
    base = {k: v for k, v in OFF_SWITCHES.items() if k in accepted} if cfg.no_constraints else {}
    return {**base, **{k: v for k, v in cfg.gen_kwargs.items() if k in accepted}}


# --------------------------------------------------------------------------- pieces
def _pieces_by_style(corpus: Any, names: Sequence[str], split: str = "test") -> dict[str, list]:
    out: dict[str, list] = {n: [] for n in names}
    for s, ids in corpus.split(split):
        if s < len(names):
            out[names[s]].append(ids)
    return out


def pick(by_style: dict[str, list[Clip]], styles: Sequence[str], n: int, min_bars: int
         ) -> list[tuple[str, int, Clip]]:
    """Up to `n` (style, index, clip) with at least `min_bars` bars, round-robin over
    `styles`, each style's pieces in split order."""
    queues = {s: [(i, c) for i, c in enumerate(by_style.get(s, [])) if c.n_bars >= min_bars]
              for s in styles}
    out: list[tuple[str, int, Clip]] = []
    while len(out) < n and any(queues.values()):
        for s in styles:
            if queues[s] and len(out) < n:
                i, c = queues[s].pop(0)
                out.append((s, i, c))
    return out


def _spread(per_seed: Sequence[float | None]) -> dict:
    vals = [v for v in per_seed if v is not None]
    if not vals:
        return {"mean": None, "min": None, "max": None, "per_seed": list(per_seed)}
    return {"mean": float(np.mean(vals)), "min": float(min(vals)), "max": float(max(vals)),
            "per_seed": [None if v is None else float(v) for v in per_seed]}


@dataclass
class _Ctx:
    studio: Any
    cfg: MusicianshipConfig
    stage: Callable[[str], None]
    clips: dict[str, list[Clip]]  # test pieces decoded, per style (all of them)
    n_takes: int = 0

    def gen(self, op: str, *args: Any, **kw: Any) -> list:
        extra = generation_kwargs(op, self.cfg)
        takes = getattr(self.studio, "continue_" if op == "continue" else op)(*args, **kw, **extra)
        self.n_takes += len(takes)
        return takes


# ---------------------------------------------------------------------------- stages
def _continue(ctx: _Ctx, fam: str, styles: Sequence[str], prompt_bars: int) -> dict:
    """Continuations of `prompt_bars`-bar prompts: the table for takes (per seed) and real."""
    cfg = ctx.cfg
    chosen = pick(ctx.clips, styles, cfg.pieces_per_family, prompt_bars + cfg.bars)
    real_rows, seed_rows = [], [[] for _ in cfg.seeds]
    for style, _, piece in chosen:
        prompt = piece.slice_bars(0, prompt_bars)
        real = piece.slice_bars(prompt_bars, prompt_bars + cfg.bars)
        real_rows.append(mus.continuation_figures(prompt, real))
        for k, seed in enumerate(cfg.seeds):
            takes = ctx.gen("continue", prompt, bars=cfg.bars, variations=cfg.takes, style=style,
                            seed=seed)
            seed_rows[k] += [mus.continuation_figures(prompt, t.clip) for t in takes]
    figures = {name: {"takes": _spread([mus.mean_of(rows, name) for rows in seed_rows]),
                      "real": mus.mean_of(real_rows, name)} for name in mus.CONTINUATION_FIGURES}
    return {"family": fam, "prompt_bars": prompt_bars, "prompts": len(chosen),
            "pieces": [f"{s}#{i}" for s, i, _ in chosen], "figures": figures}


_INFILL_FIGURES = ("seam_leap", "seam_leap_over_7", "chord_on_beat", "parallels_per_bar",
                   "voice_crossing", "overlap")


def _infill_row(clip: Clip, prompt: Clip, a: int, b: int) -> dict:
    lo, hi = clip.bar_starts[a - 1], clip.bar_starts[b]
    leaps = [x for x in mus.seam_leaps(clip, lo, hi) if x is not None]
    region = clip.slice_bars(a - 1, b)
    f, o = mus.parallels(region)
    return {"seam_leap": float(np.mean(leaps)) if leaps else None,
            "seam_leap_over_7": float(np.mean([x > 7 for x in leaps])) if leaps else None,
            "chord_on_beat": mus.chord_on_beat_share(region),
            "parallels_per_bar": (f + o) / max(1, region.n_bars),
            "voice_crossing": mus.voice_crossing_share(region, mus.voice_order(prompt)),
            "overlap": mus.overlap_share(region)}


def _infill(ctx: _Ctx, fam: str, styles: Sequence[str]) -> dict:
    """Regenerate bars `cfg.infill` of 8-bar excerpts: seams and the region's figures."""
    cfg = ctx.cfg
    a, b = cfg.infill
    chosen = pick(ctx.clips, styles, cfg.infill_pieces_per_family, 8)
    real_rows, seed_rows = [], [[] for _ in cfg.seeds]
    for style, _, piece in chosen:
        excerpt = piece.slice_bars(0, 8)
        before = excerpt.slice_bars(0, a - 1)
        real_rows.append(_infill_row(excerpt, before, a, b))
        for k, seed in enumerate(cfg.seeds):
            takes = ctx.gen("regenerate", excerpt, bars=(a, b), variations=cfg.takes,
                            style=style, seed=seed)
            seed_rows[k] += [_infill_row(t.clip, before, a, b) for t in takes]
    figures = {name: {"takes": _spread([mus.mean_of(rows, name) for rows in seed_rows]),
                      "real": mus.mean_of(real_rows, name)} for name in _INFILL_FIGURES}
    return {"family": fam, "bars": [a, b], "excerpts": len(chosen), "figures": figures}


def _blend(ctx: _Ctx, a: str, b: str) -> dict:
    """Blends from nothing at `cfg.blend_weights`: each take's position between the two
    styles' real pieces, hybrid share, Spearman, voices per take."""
    cfg = ctx.cfg
    n = cfg.real_pieces_per_style
    real_a = [c.slice_bars(0, min(cfg.bars, c.n_bars)) for c in ctx.clips[a][:n]]
    real_b = [c.slice_bars(0, min(cfg.bars, c.n_bars)) for c in ctx.clips[b][:n]]
    line = mus.BlendLine.of(real_a, real_b)
    per_seed = []
    for seed in cfg.seeds:
        ws, pos, voices = [], [], []
        for w in cfg.blend_weights:
            takes = ctx.gen("blend", None, styles={a: 1 - w, b: w}, bars=cfg.bars,
                            variations=cfg.blend_takes, seed=seed)
            ws += [w] * len(takes)
            pos += [line.position(t.clip) for t in takes]
            voices.append([mus.voice_count(t.clip) for t in takes])
        mid = [p for w, p in zip(ws, pos) if w == 0.5]
        inner = [p for w, p in zip(ws, pos) if 0 < w < 1]
        per_seed.append({"weights": ws, "positions": pos, "voices": voices,
                         "hybrid_at_half": mus.hybrid_share(mid),
                         "hybrid_inner": mus.hybrid_share(inner),
                         "spearman": mus.weight_position_spearman(ws, pos)})
    mean_pos = [float(np.mean([p for s in per_seed for w, p in zip(s["weights"], s["positions"])
                               if w == x])) for x in cfg.blend_weights]
    return {"pair": [a, b], "weights": list(cfg.blend_weights), "mean_position": mean_pos,
            "real_position": [float(np.mean([line.position(c) for c in real_a])),
                              float(np.mean([line.position(c) for c in real_b]))],
            "hybrid_at_half": _spread([s["hybrid_at_half"] for s in per_seed]),
            "hybrid_inner": _spread([s["hybrid_inner"] for s in per_seed]),
            "spearman": _spread([s["spearman"] for s in per_seed]),
            "voices": per_seed[0]["voices"]}


def _prior_shares(studio: Any, style: str, name: str) -> dict:
    """The model's style priors' shares `name` ("keys", "tempi_qpm") of `style`; {} without."""
    priors = getattr(getattr(studio, "engine", None), "priors", None)
    return priors.styles.get(style, {}).get(name, {}) if priors is not None else {}


def _prior_keys(studio: Any, style: str) -> set[str] | None:
    """The keys at least 5 % of all the style's source pieces use (the model's style priors,
    measured from every piece of the style, not only its few test pieces); None without."""
    shares = _prior_shares(studio, style, "keys")
    return {k for k, w in shares.items() if w >= mus.KEY_SHARE_MIN} if shares else None


def _unmarked_qpm(studio: Any) -> float | None:
    """The tempo a piece without a tempo mark reads as (the default 120 qpm, as the
    tokenizer's tempo bins hold it); None without a tokenizer."""
    tok = getattr(studio, "tok", None)
    if tok is None:
        return None
    from musegen.tokenizer.codec import tempo_bin

    qpms = tok.vocab.tempos_qpm
    return float(qpms[tempo_bin(120.0, qpms)])


def _marked_tempi(studio: Any, style: str) -> tuple[list[float], list[float]] | None:
    """(tempi, shares) of the style's marked pieces in the corpus, from the model's style
    priors; None where the model has none."""
    shares = _prior_shares(studio, style, "tempi_qpm")
    if not shares:
        return None
    return [float(q) for q in shares], [float(w) for w in shares.values()]


def _nothing(ctx: _Ctx, style: str) -> dict:
    """Takes from nothing in one style: voices, keys, tempi, against the style's real pieces."""
    cfg = ctx.cfg
    real = [c.slice_bars(0, min(cfg.bars, c.n_bars)) for c in ctx.clips[style][:cfg.real_pieces_per_style]]
    real_keys = [mus.clip_key(c) for c in real]
    real_tempi = [mus.tempo(c) for c in real]
    real_voices = [mus.voice_count(c) for c in real]
    # test pieces without a tempo mark read as the default: where fewer than half carry one,
    # compare with the style's marked tempi in the corpus (the model's style priors)
    marked = _marked_tempi(ctx.studio, style)
    unmarked = _unmarked_qpm(ctx.studio)  # what a piece without a tempo mark reads as
    n_marked = sum(1 for q in real_tempi if unmarked is None or abs(q - unmarked) > 0.5)
    tempo_ref = marked if marked and n_marked < 0.5 * len(real_tempi) else (real_tempi, None)
    all_keys = _prior_keys(ctx.studio, style)
    per_seed = []
    for seed in cfg.seeds:
        takes = ctx.gen("blend", None, styles={style: 1.0}, bars=cfg.bars,
                        variations=cfg.nothing_takes, seed=seed)
        clips = [t.clip for t in takes]
        vc = [mus.voice_count(c) for c in clips]
        tempi = [mus.tempo(c) for c in clips]
        per_seed.append({
            "voices": vc, "keys": [mus.clip_key(c) for c in clips], "tempi": tempi,
            "voices_as_real": float(np.mean([v == int(np.median(real_voices)) for v in vc]))
            if real_voices else None,
            "key_idiomatic": mus.key_idiomatic_share([mus.clip_key(c) for c in clips], real_keys),
            "key_idiomatic_all": mus.keys_in_share([mus.clip_key(c) for c in clips], all_keys)
            if all_keys else None,
            "tempo_in_style": mus.tempo_in_style_share(tempi, *tempo_ref),
            "tempo_modal": mus.modal_share(tempi),
            "overlap": mus.mean_of([{"x": mus.overlap_share(c)} for c in clips], "x")})
    return {"style": style, "family": family(style),
            "real": {"voices_median": float(np.median(real_voices)) if real_voices else None,
                     "tempo_median": float(np.median(real_tempi)) if real_tempi else None,
                     "tempo_reference": "marked corpus tempi" if tempo_ref is marked else "test pieces",
                     "tempo_modal": mus.modal_share(real_tempi),
                     "idiomatic_keys": sorted(mus.idiomatic_keys(real_keys)),
                     "idiomatic_keys_all": sorted(all_keys) if all_keys else None,
                     "key_idiomatic_all": mus.keys_in_share(real_keys, all_keys) if all_keys else None,
                     "test_pieces": len(real),
                     "overlap": mus.mean_of([{"x": mus.overlap_share(c)} for c in real], "x")},
            **{k: _spread([s[k] for s in per_seed]) for k in
               ("voices_as_real", "key_idiomatic", "key_idiomatic_all", "tempo_in_style", "tempo_modal",
                "overlap")},
            "voices": [s["voices"] for s in per_seed], "keys": [s["keys"] for s in per_seed],
            "tempi": [s["tempi"] for s in per_seed]}


def run(studio: Any, corpus: Any, cfg: MusicianshipConfig | None = None, *,
        styles: Sequence[str] | None = None, on_stage: Callable[[str], None] | None = None) -> dict:
    """Measure the benchmark with `studio`'s model on `corpus`'s test split (see the module
    docstring); `styles` limits the styles (default: every style of the model)."""
    cfg = cfg or MusicianshipConfig()
    stage = on_stage or (lambda s: None)
    names = list(studio.style_names)
    tok = corpus.tokenizer()
    wanted = [s for s in (styles or names) if s in names]
    raw = _pieces_by_style(corpus, names)
    clips = {s: [tok.decode(ids) for ids in raw[s]] for s in wanted}
    ctx = _Ctx(studio, cfg, stage, clips)
    families: dict[str, list[str]] = {}
    for s in wanted:
        families.setdefault(family(s), []).append(s)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    out: dict[str, Any] = {"config": asdict(cfg), "model_id": studio.model_id,
                           "families": families, "continue": [], "infill": [], "blend": [],
                           "nothing": []}
    for fam, fam_styles in families.items():
        for pb in cfg.prompt_bars:
            stage(f"continue {fam}, {pb}-bar prompts")
            out["continue"].append(_continue(ctx, fam, fam_styles, pb))
    seconds["continue"] = time.perf_counter() - t0
    for fam, fam_styles in families.items():
        stage(f"regenerate {fam}")
        out["infill"].append(_infill(ctx, fam, fam_styles))
    seconds["infill"] = time.perf_counter() - t0 - seconds["continue"]
    t1 = time.perf_counter()
    for a, b in cfg.blend_pairs:
        if a in clips and b in clips and clips[a] and clips[b]:
            stage(f"blend {a} -> {b}")
            out["blend"].append(_blend(ctx, a, b))
    seconds["blend"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    starts = [s for fam_styles in families.values() for s in fam_styles[:cfg.nothing_per_family]]
    for s in [s for s in wanted if s in starts]:
        if clips[s]:
            stage(f"from nothing: {s}")
            out["nothing"].append(_nothing(ctx, s))
    seconds["nothing"] = time.perf_counter() - t1
    seconds["total"] = time.perf_counter() - t0
    out["seconds"] = seconds
    out["takes"] = ctx.n_takes
    return out


# --------------------------------------------------------------------------- markdown
LABELS = {
    "chord_on_beat": "beats sounding a plain triad or 7th chord (>= 3 voices)",
    "parallel_fifths_per_bar": "parallel 5ths per bar",
    "parallel_octaves_per_bar": "parallel 8ves/unisons per bar",
    "voice_crossing": "voice crossings (share of eighth-note moments)",
    "overlap": "notes overlapping inside one voice",
    "motif_reuse": "motif reuse (melody interval 3-grams from the prompt)",
    "rhythm_reuse": "bar rhythms of the prompt reused",
    "repeated_notes": "melody steps repeating the pitch",
    "long_end_bar4": "long note ending bar 4",
    "long_end_bar8": "long note ending bar 8",
    "ends_on_tonic": "last note (lowest of last onset) on the tonic",
    "voices": "voices",
    "voices_kept": "prompt's voices present",
    "satb_range": "notes in SATB ranges (4-voice clips)",
    "bass_below_tenor": "bass at or below tenor (moments)",
    "seam_leap": "melody leap at a seam (semitones)",
    "seam_leap_over_7": "seams leaping more than 7 semitones",
    "parallels_per_bar": "parallel 5ths + 8ves per bar (region)",
}
_COUNTS = {"voices", "parallel_fifths_per_bar", "parallel_octaves_per_bar", "seam_leap",
           "parallels_per_bar"}


def _fmt(name: str, x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if name in _COUNTS else f"{100 * x:.0f} %"


def _cell(name: str, s: dict) -> str:
    if s["mean"] is None:
        return "-"
    if s["min"] == s["max"] or len([v for v in s["per_seed"] if v is not None]) < 2:
        return _fmt(name, s["mean"])
    return f"{_fmt(name, s['mean'])} ({_fmt(name, s['min'])}..{_fmt(name, s['max'])})"


def markdown(result: dict, heading: str = "##") -> list[str]:
    """The benchmark's tables as Markdown lines (sections under `heading`)."""
    cfg = result["config"]
    h = heading
    lines = [f"Takes: {cfg['takes']} per prompt and seed, seeds {list(cfg['seeds'])}; cells are "
             "the mean over seeds (min..max over seeds); real = the real bars that follow the "
             f"same prompts. {result['takes']} takes, {result['seconds']['total']:.0f} s.", ""]
    for fam in result["families"]:
        rows = [c for c in result["continue"] if c["family"] == fam]
        if not rows:
            continue
        lines += [f"{h} Continue: {fam} ({', '.join(result['families'][fam])})", "",
                  "| figure | " + " | ".join(f"takes, {c['prompt_bars']}-bar prompt ({c['prompts']}) "
                                             f"| real, {c['prompt_bars']}-bar" for c in rows) + " |",
                  "|---|" + "---:|---:|" * len(rows)]
        for name in mus.CONTINUATION_FIGURES:
            cells = [f"{_cell(name, c['figures'][name]['takes'])} | "
                     f"{_fmt(name, c['figures'][name]['real'])}" for c in rows]
            if all(c["figures"][name]["real"] is None and c["figures"][name]["takes"]["mean"] is None
                   for c in rows):
                continue
            lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
        lines.append("")
    if result["infill"]:
        a, b = result["infill"][0]["bars"]
        lines += [f"{h} Regenerate (bars {a}-{b} of 8-bar excerpts)", "",
                  "| figure | " + " | ".join(f"{r['family']} takes ({r['excerpts']}) | real"
                                             for r in result["infill"]) + " |",
                  "|---|" + "---:|---:|" * len(result["infill"])]
        for name in _INFILL_FIGURES:
            lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(
                f"{_cell(name, r['figures'][name]['takes'])} | {_fmt(name, r['figures'][name]['real'])}"
                for r in result["infill"]) + " |")
        lines.append("")
    if result["blend"]:
        ws = result["blend"][0]["weights"]
        lines += [f"{h} Blend from nothing", "",
                  "Position of each take on the line from A's real pieces (0) to B's (1) "
                  "(descriptors of `musegen.evaluation.descriptors`, standardised); hybrid = "
                  "position in 0.2..0.8.", "",
                  "| A -> B | " + " | ".join(f"w={w:g}" for w in ws)
                  + " | hybrid at 0.5 | hybrid 0<w<1 | Spearman | voices per take (first seed) |",
                  "|---|" + "---:|" * (len(ws) + 3) + "---|"]
        for r in result["blend"]:
            lines.append(f"| {r['pair'][0]} -> {r['pair'][1]} | "
                         + " | ".join(f"{p:.2f}" for p in r["mean_position"])
                         + f" | {_cell('x', r['hybrid_at_half'])} | {_cell('x', r['hybrid_inner'])} | "
                         f"{_cell('voices', r['spearman'])} | "
                         + " / ".join(",".join(map(str, v)) for v in r["voices"]) + " |")
        lines.append("")
    if result["nothing"]:
        lines += [f"{h} From nothing", "",
                  "| style | voices (takes) | real voices | takes with the real voice count "
                  "| keys idiomatic (>= 5 % of the test pieces) | keys idiomatic (>= 5 % of all the "
                  "style's pieces: its priors): takes / real test pieces | tempo within real p10..p90 "
                  "(*: of the corpus's marked tempi) | takes at the "
                  "commonest tempo | median tempo real | overlap takes / real |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in result["nothing"]:
            lines.append(
                f"| {r['style']} | {' / '.join(','.join(map(str, v)) for v in r['voices'])} | "
                f"{r['real']['voices_median']:g} | {_cell('x', r['voices_as_real'])} | "
                f"{_cell('x', r['key_idiomatic'])} ({r['real'].get('test_pieces', '?')}) | "
                f"{_cell('x', r['key_idiomatic_all']) if r.get('key_idiomatic_all') else '-'} / "
                f"{_fmt('x', r['real'].get('key_idiomatic_all'))} | "
                f"{_cell('x', r['tempo_in_style'])}"
                f"{' *' if r['real'].get('tempo_reference') == 'marked corpus tempi' else ''} | "
                f"{_cell('x', r['tempo_modal'])} | {r['real']['tempo_median']:.0f} | "
                f"{_cell('x', r['overlap'])} / {_fmt('x', r['real']['overlap'])} |")
        lines.append("")
    return lines
