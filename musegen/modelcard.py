"""Finishing a trained model: the figures its card states, the novelty index, the card itself.

`finalize()` measures (held-out NLL vs the n-gram baseline, style-vector cosines, whether
generations follow their style), builds the novelty index over the training split, and writes
`MODEL_CARD.md` and the figures into the model folder. Nothing here is hard-coded: every
number in the card comes from the run's own files or from a measurement made here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musegen.atomic import write_json, write_text

if TYPE_CHECKING:
    from musegen.corpus.dataset import Corpus
    from musegen.studio import Studio


def style_report(model_dir: Path, corpus_dir: Path, *, takes_per_style: int = 6, bars: int = 8,
                 seed: int = 1234, on_stage: Callable[[str], None] | None = None) -> dict:
    """Pairwise cosine of style vectors, and descriptor-based fidelity of generations."""
    from musegen.corpus.dataset import Corpus
    from musegen.evaluation.descriptors import cosine_matrix, style_fidelity
    from musegen.studio import Studio

    studio = Studio(model=model_dir)
    corpus = Corpus.open(corpus_dir)
    names = studio.style_names
    real = _real_descriptors(corpus, names, bars)
    t0 = time.perf_counter()
    by_strength = {strength: _generated_descriptors(studio, strength, takes_per_style, bars, seed, on_stage)
                   for strength in (1.0, 2.0)}
    gen_s = time.perf_counter() - t0
    generated = by_strength[1.0]
    fid = style_fidelity(real, generated)
    fid2 = style_fidelity(real, by_strength[2.0])
    real_fid = style_fidelity(real, real)  # how well the descriptors separate real pieces
    cos = cosine_matrix(np.stack([s.vector for s in studio.styles]))
    off = cos[~np.eye(len(cos), dtype=bool)]
    return {
        "styles": names,
        "cosine": cos.round(4).tolist(),
        "cosine_offdiag_mean": float(off.mean()),
        "cosine_offdiag_max": float(off.max()),
        "fidelity_styles": fid.styles,
        "fidelity_confusion": fid.confusion.tolist(),
        "take_accuracy": fid.take_accuracy,
        "centroid_accuracy": fid.centroid_accuracy,
        "centroid_match": dict(zip(fid.styles, fid.centroid_match)),
        "take_accuracy_strength_2": fid2.take_accuracy,
        "centroid_accuracy_strength_2": fid2.centroid_accuracy,
        "real_piece_accuracy": real_fid.take_accuracy,
        "descriptor_means": _descriptor_means(real, generated, names),
        "takes_per_style": takes_per_style,
        "bars": bars,
        "generation_seconds": gen_s,
    }


def _real_descriptors(corpus: Corpus, names: list[str], bars: int) -> dict[str, list[np.ndarray]]:
    """The descriptors of the first `bars` bars of every test piece, by style name."""
    from musegen.evaluation.descriptors import describe

    tok = corpus.tokenizer()
    real: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for style, ids in corpus.split("test"):
        clip = tok.decode(ids)
        real[names[style]].append(describe(clip.slice_bars(0, min(bars, clip.n_bars))))
    return real


def _generated_descriptors(studio: Studio, strength: float, takes_per_style: int, bars: int, seed: int,
                           on_stage: Callable[[str], None] | None) -> dict[str, list[np.ndarray]]:
    """The descriptors of `takes_per_style` takes generated in each style at `strength`, by name."""
    from musegen.evaluation.descriptors import describe

    generated: dict[str, list[np.ndarray]] = {}
    for i, name in enumerate(studio.style_names):
        if on_stage:
            on_stage(f"generating {name} (style strength {strength})")
        takes = studio.blend(None, styles={name: 1.0}, bars=bars, variations=takes_per_style,
                             seed=seed + 100 * i, style_strength=strength)
        generated[name] = [describe(t.clip) for t in takes]
    return generated


def _descriptor_means(real: dict[str, list[np.ndarray]], generated: dict[str, list[np.ndarray]],
                      names: list[str]) -> dict:
    """Mean voices, notes per bar, pitch range and step, real and generated, per style that has both."""
    from musegen.evaluation.descriptors import NAMES

    idx = {n: NAMES.index(n) for n in ("voices", "notes_per_bar", "pitch_range", "mean_step")}
    return {name: {"real": {k: float(np.mean([v[i] for v in real[name]])) for k, i in idx.items()},
                   "generated": {k: float(np.mean([v[i] for v in generated[name]]))
                                 for k, i in idx.items()}}
            for name in names if real[name] and generated.get(name)}


def finalize(model_dir: Path, corpus_dir: Path, *, on_stage: Callable[[str], None] | None = None,
             musicianship: bool = False) -> dict:
    """Measure the model, write `eval.json`, the novelty index and `MODEL_CARD.md`;
    `musicianship`: also the quick musicianship benchmark (`musicianship_section`)."""
    from musegen.evaluation.nll import evaluate_model_dir
    from musegen.novelty import build_from_corpus

    model_dir, corpus_dir = Path(model_dir), Path(corpus_dir)
    if on_stage:
        on_stage("novelty index")
    t0 = time.perf_counter()
    index = build_from_corpus(corpus_dir, split="train")
    index.save(model_dir / "novelty.npz")
    novelty_s = time.perf_counter() - t0
    nll = evaluate_model_dir(model_dir, corpus_dir, split="test", on_stage=on_stage)
    styles = style_report(model_dir, corpus_dir, on_stage=on_stage)
    sample = heldout_sample(model_dir, corpus_dir)
    figures = {"nll": nll.to_dict(), "styles": styles, "novelty_index_build_s": novelty_s,
               "heldout_sample": sample}
    if musicianship:
        figures["musicianship"] = measure_musicianship(model_dir, corpus_dir, on_stage=on_stage)
    write_json(model_dir / "eval.json", figures)
    write_text(model_dir / "MODEL_CARD.md", render_card(model_dir, corpus_dir, figures, nll))
    return figures


def heldout_sample(model_dir: Path, corpus_dir: Path, per_style: int = 2) -> dict:
    """A few test windows shipped with the model, with the NLL measured on them now, so a test
    can check the shipped weights against the card without the corpus."""
    from musegen.corpus.dataset import Corpus
    from musegen.model import load_checkpoint
    from musegen.train import heldout_windows, token_nll

    model, _ = load_checkpoint(model_dir)
    windows = heldout_windows(Corpus.open(corpus_dir).split("test"), 256, per_style)
    nll = token_nll(model, windows)
    lengths = np.array([len(w) for _, w in windows])
    np.savez_compressed(model_dir / "heldout_sample.npz",
                        tokens=np.concatenate([w for _, w in windows]).astype(np.uint16),
                        offsets=np.concatenate([[0], np.cumsum(lengths)]),
                        styles=np.array([s for s, _ in windows], dtype=np.int16))
    total = float(sum(x.sum() for x in nll))
    count = int(sum(len(x) for x in nll))
    return {"windows": len(windows), "tokens": count, "mean_nll": total / count}


def measure_musicianship(model_dir: Path, corpus_dir: Path, *,
                         on_stage: Callable[[str], None] | None = None) -> dict:
    """The quick musicianship benchmark (`musegen.evaluation.musicianship_run`) of the model."""
    from musegen.corpus.dataset import Corpus
    from musegen.evaluation.musicianship_run import MusicianshipConfig, run
    from musegen.studio import Studio

    return run(Studio(model=model_dir), Corpus.open(corpus_dir), MusicianshipConfig.quick_config(),
               on_stage=on_stage)


def musicianship_section(result: dict) -> list[str]:
    """The card's musicianship section: takes against the real music they continue."""
    from musegen.evaluation.musicianship_run import markdown

    return ["", "## Musicianship", "",
            "Quick run of `python -m benchmarks.musicianship` (takes against the real bars that "
            "follow the same test-split prompts; see `benchmarks/results/musicianship.md` for "
            "the full run).", "", *markdown(result, heading="###")]


def render_card(model_dir: Path, corpus_dir: Path, figures: dict, nll: object) -> str:
    meta = json.loads((model_dir / "musegen.json").read_text())
    cfg = meta["musegen_config"]
    tr = meta.get("training", {})
    summary = json.loads((corpus_dir / "summary.json").read_text())
    n_params = _param_count(model_dir)
    st = figures["styles"]
    lines = [
        "# musegen default model", "",
        "A style-conditioned music transformer over musegen-REMI tokens (Llama-shaped decoder "
        "plus a learned style table; the style vector is added to every position).", "",
        "## Files", "",
        "- `config.json` + `model.safetensors`: the language model, loadable with "
        "`transformers.AutoModelForCausalLM.from_pretrained(<this folder>)` (it then runs with a "
        "zero style vector).",
        "- `style_table.safetensors` (row 0 = the learned no-style vector), `styles.json`, "
        "`tokenizer.json`, `musegen.json` (musegen's frozen config, training record, versions).",
        "- `novelty.npz`: hashed melody 6-grams of the training split, used to report copying.",
        "- `eval.json`: every figure below, machine-readable.", "",
        "## Model", "",
        f"- {n_params:,} parameters: {cfg['n_layers']} layers, d_model {cfg['d_model']}, "
        f"{cfg['n_heads']} heads, d_ff {cfg['d_ff']}, vocabulary {cfg['vocab_size']}, "
        f"{cfg['n_styles']} styles; training window {cfg['context']} tokens (rotary positions).",
        *([f"- Told the key: a learned vector per tonic x mode ({cfg['n_keys']} rows, plus row 0 "
           "for an unknown key), added like the style vector. Training gives each window its "
           "piece's key (Krumhansl estimate, moved with the transposition; "
           f"{tr.get('train_config', {}).get('key_dropout')} of the windows get the unknown row); "
           "generation gives the key lock, else the prompt's estimated key, else (from nothing) "
           "the key drawn for the take from the style's real pieces."] if cfg.get("n_keys") else []),
        "", "## Data", "",
        f"music21's bundled corpus, built by `musegen corpus build` in {summary.get('wall_s', 0):.0f} s "
        f"({'abc2midi' if summary.get('abc2midi') else 'music21'} for the ABC collections). "
        "Split by piece group (near-duplicate tune variants share a group), 90/5/5.", "",
        "| style | train | valid | test | description |", "|---|---:|---:|---:|---|",
    ]
    for s in summary["styles"]:
        p = s["pieces"]
        lines.append(f"| {s['name']} | {p.get('train', 0)} | {p.get('valid', 0)} | "
                     f"{p.get('test', 0)} | {s.get('description', '')} |")
    tc = tr.get("train_config", {})
    lines += [
        "", "## Training", "",
        f"- Steps: {tr.get('steps')} of batch {tc.get('batch_size')} x {tc.get('context')} tokens "
        f"(rows packed with pieces of one style), AdamW lr {tc.get('lr')} with {tc.get('warmup')} "
        f"warm-up steps and cosine decay to {tc.get('min_lr_ratio')}x, weight decay "
        f"{tc.get('weight_decay')}, gradient clip {tc.get('grad_clip')}.",
        f"- Fill-in-the-middle rate {tc.get('fim_rate')} (bar ranges up to {tc.get('max_fim_bars')} bars), "
        f"style dropout {tc.get('style_dropout')}, random transposition {tc.get('transpose_range')} semitones.",
        *_continued_from(tr),
        *_exposure_lines(corpus_dir, tr),
        f"- Hardware: {tr.get('hardware')}; wall time {tr.get('wall_s', 0) / 60:.1f} min"
        f"{' (bf16 autocast)' if tc.get('bf16') else ''}.",
        f"- Final train loss (mean of the last 50 steps): {tr.get('final_train_loss', float('nan')):.4f}; "
        f"final validation NLL (mean over styles): "
        f"{np.mean(list((tr.get('final_valid_nll') or {0: float('nan')}).values())):.4f}.",
        "", "## Held-out NLL per style (test split), model vs n-gram baseline", "",
        "Protocol: the first window of each test piece; nats per token; the baseline is "
        "interpolated modified Kneser-Ney fitted on the training pieces, order chosen on validation.",
        "", nll.markdown(),  # type: ignore[attr-defined]
        "", "## Style", "",
        f"- Style vectors: mean pairwise cosine {st['cosine_offdiag_mean']:.3f}, "
        f"max {st['cosine_offdiag_max']:.3f} (full matrix in `eval.json`).",
        f"- Generations follow their style: {st['takes_per_style']} takes of {st['bars']} bars per "
        f"style, started from nothing; descriptors (key-relative pitch classes, onset phases, "
        f"notes per bar, voices, range, step size) compared with the test pieces of every style. "
        f"The generated centroid is nearest its own style's real centroid for "
        f"{sum(st['centroid_match'].values())} of {len(st['centroid_match'])} styles; "
        f"{100 * st['take_accuracy']:.0f} % of single takes are nearest their own style "
        f"(chance: {100 / len(st['centroid_match']):.0f} %; real test pieces themselves: "
        f"{100 * st['real_piece_accuracy']:.0f} %, so the descriptors only partly separate the "
        f"many monophonic folk styles). With style strength 2 (guidance): "
        f"{100 * st['centroid_accuracy_strength_2']:.0f} % of centroids, "
        f"{100 * st['take_accuracy_strength_2']:.0f} % of takes.",
        "", "Mean descriptors per style, real test pieces (first 8 bars) vs generated takes:", "",
        "| style | voices real / gen | notes per bar real / gen | pitch range real / gen "
        "| mean step real / gen |", "|---|---:|---:|---:|---:|",
        *[f"| {n} | {d['real']['voices']:.1f} / {d['generated']['voices']:.1f} | "
          f"{d['real']['notes_per_bar']:.1f} / {d['generated']['notes_per_bar']:.1f} | "
          f"{d['real']['pitch_range']:.1f} / {d['generated']['pitch_range']:.1f} | "
          f"{d['real']['mean_step']:.2f} / {d['generated']['mean_step']:.2f} |"
          for n, d in st["descriptor_means"].items()],
        *(musicianship_section(figures["musicianship"]) if "musicianship" in figures else []),
        "", "## Reproduce", "", "```bash", "bash scripts/train_default.sh", "```", "",
        "which runs:", "", "```bash",
        "musegen corpus build --out data/corpus-default",
        *([tr["init_from"]["training"].get("command", "musegen train ...")]
          if (tr.get("init_from") or {}).get("training") else []),
        tr.get("command", "musegen train ..."),
        "musegen model-card --model runs/default/model --corpus data/corpus-default"
        + (" --musicianship" if "musicianship" in figures else ""),
        "```", "",
        f"Versions: {json.dumps(meta.get('versions', {}))}.",
    ]
    return "\n".join(lines) + "\n"


def shown_path(folder: object) -> str:
    """A folder as a card shows it: relative to the checkout when inside it (a card must not
    name the machine it was written on), `~/...` under the home folder, else as given."""
    if not folder:
        return "?"
    path = Path(str(folder))
    for root, prefix in ((Path(__file__).resolve().parents[1], ""), (Path.home(), "~/")):
        try:
            return prefix + path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return str(folder)


def _continued_from(tr: dict) -> list[str]:
    """The card's line on the run this one continued (`musegen train --init-from`)."""
    src = tr.get("init_from")
    if not src:
        return []
    t = src.get("training") or {}
    tc = t.get("train_config", {})
    return [f"- Continued from {shown_path(src.get('folder'))}: {t.get('steps')} steps of batch "
            f"{tc.get('batch_size')} x {tc.get('context')} tokens, {t.get('wall_s', 0) / 60:.1f} min on "
            f"{t.get('hardware')} (its command is the first training line under Reproduce)."]


def exposure(corpus_dir: Path, train_config: dict, steps: int) -> dict[str, float]:
    """Epochs per style: the rows a run drew of each style (`style_shares`) times their tokens,
    over the style's training tokens."""
    from musegen.corpus.dataset import Corpus
    from musegen.train import style_shares

    corpus = Corpus.open(corpus_dir)
    train = corpus.split("train")
    shares = style_shares(train, train_config.get("style_alpha"))
    tokens: dict[int, int] = {}
    for s, ids in train:
        tokens[s] = tokens.get(s, 0) + len(ids)
    seen = steps * train_config.get("batch_size", 0) * train_config.get("context", 0)
    return {corpus.style_names[s]: seen * shares[s] / tokens[s] for s in shares}


def _exposure_lines(corpus_dir: Path, tr: dict) -> list[str]:
    """Per-style epochs of this run (and of the run it continued)."""
    tc = tr.get("train_config", {})
    if not tc or not tr.get("steps"):
        return []
    runs = [("this run", tc, tr["steps"])]
    src = (tr.get("init_from") or {}).get("training") or {}
    if src.get("train_config"):
        runs.insert(0, ("continued run", src["train_config"], src.get("steps", 0)))
    try:
        tables = [(name, exposure(corpus_dir, c, n)) for name, c, n in runs]
    except (OSError, ValueError, KeyError):
        return []
    alpha = tc.get("style_alpha")
    lines = [f"- Exposure: rows drawn by style with p(style) ~ tokens^{alpha} (balanced)." if alpha is not None
             else "- Exposure: pieces drawn by sqrt(length), so styles as their pieces come.",
             "", "| style | " + " | ".join(f"epochs, {n}" for n, _ in tables) + " |",
             "|---|" + "---:|" * len(tables)]
    for style in tables[0][1]:
        lines.append(f"| {style} | " + " | ".join(f"{t[style]:.1f}" for _, t in tables) + " |")
    return lines + [""]


def _param_count(model_dir: Path) -> int:
    from safetensors import safe_open

    n = 0
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        for k in f.keys():
            if k != "lm_head.weight":
                n += int(np.prod(f.get_slice(k).get_shape()))
    with safe_open(str(model_dir / "style_table.safetensors"), "pt") as f:
        n += int(np.prod(f.get_slice("style_table").get_shape()))
        if "key_table" in f.keys():
            n += int(np.prod(f.get_slice("key_table").get_shape()))
    return n
