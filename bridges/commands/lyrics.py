"""Lyric commands: words for a melody, a melody for words, and building the lyric model.

    musegen lyrics IN.mid --theme "the sea" --rhyme ABAB --variations 4 --out DIR
    musegen melody "Down by the river where the cold wind blows" --style irish-dance --out DIR
    musegen lyrics-corpus --out data/lyrics-corpus          # verse corpus + BPE tokenizer
    musegen lyrics-train --corpus data/lyrics-corpus --run-dir runs/lyrics --steps 1600

`lyrics` and `melody` write their takes like the other generation commands
(`<out>/<name>-<op>-<n>.mid` + a JSON sidecar, both atomically) and print each take's lines
and figures.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from bridges.commands._params import add_params, request_kw


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lyrics", help="lyrics for the melody of a MIDI file, written onto its notes",
                       description="One line per phrase of the melody, with exactly as many syllables "
                       "as the phrase has notes, in a rhyme scheme; the syllables are written into "
                       "the MIDI as lyric events.")
    p.add_argument("input", type=Path, help="MIDI file with a melody")
    p.add_argument("--lyric-model", default=None,
                   help="any local Hugging Face causal-LM folder (default: the shipped lyric model)")
    _model_args(p)
    add_params(p, "lyrics")
    p.set_defaults(func=run_lyrics)

    m = sub.add_parser("melody", help="a melody for lyrics: one note per syllable, written into the MIDI",
                       description="Stressed syllables on the beats, phrase ends at line ends, pitches "
                       "from the music model. Lines are the text's lines or its '/'-separated parts.")
    m.add_argument("text", nargs="?", default=None,
                   help="the lyric; separate lines with '/' or newlines (or use --text-file)")
    m.add_argument("--text-file", type=Path, default=None,
                   help="read the lyric from a UTF-8 text file (default: the TEXT argument)")
    m.add_argument("--style", action="append", default=None, metavar="NAME[=WEIGHT]",
                   help="style name, or repeat NAME=WEIGHT for a blend (see `musegen styles`; default: none)")
    _model_args(m)
    add_params(m, "melody")
    m.set_defaults(func=run_melody)

    p = sub.add_parser("lyrics-corpus", help="build the lyric model's verse corpus and tokenizer")
    p.add_argument("--out", type=Path, default=Path("data/lyrics-corpus"), help="corpus folder to write")
    p.add_argument("--vocab-size", type=int, default=4096, help="byte-level BPE vocabulary size")
    p.add_argument("--limit", type=int, default=None,
                   help="read only the first N lines, for a quick try (default: all)")
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="encode with this lyric model's tokenizer folder instead of training a new BPE, "
                        "e.g. musegen/models/lyrics to continue its training (default: train a new one)")
    p.set_defaults(func=run_corpus)

    p = sub.add_parser("lyrics-train", help="train the lyric language model")
    p.add_argument("--corpus", type=Path, default=Path("data/lyrics-corpus"), help="the `lyrics-corpus` folder")
    p.add_argument("--run-dir", type=Path, default=Path("runs/lyrics"),
                   help="checkpoints and the final model (RUN/final); an existing run is resumed")
    p.add_argument("--steps", type=int, default=1600, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=24, help="sequences per step")
    p.add_argument("--context", type=int, default=256, help="training window in tokens")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--d-model", type=int, default=256, help="model width")
    p.add_argument("--layers", type=int, default=4, help="transformer layers")
    p.add_argument("--heads", type=int, default=4, help="attention heads per layer")
    p.add_argument("--d-ff", type=int, default=768, help="feed-forward width")
    p.add_argument("--eval-every", type=int, default=200, help="steps between validation losses")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and data order")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this lyric model's weights, e.g. musegen/models/lyrics (same shape and "
                        "tokenizer: build the corpus with --tokenizer of the same folder; default: random weights)")
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast for training matmuls (faster on CPUs with AVX512-BF16/AMX, refused on "
                   "CPUs without them; default: fp32)")
    p.set_defaults(func=run_train)


def run_corpus(args: argparse.Namespace) -> int:
    from rich.console import Console

    from musegen.lyrics.train import build_lyric_corpus

    console = Console(stderr=True)
    with console.status("") as status:
        summary = build_lyric_corpus(args.out, vocab_size=args.vocab_size, limit=args.limit, tokenizer=args.tokenizer,
                                     on_stage=lambda s: (status.update(s), console.log(s)))
    for name, s in summary["splits"].items():
        console.print(f"{name}: {s['lines']:,} lines, {s['stanzas']:,} stanzas, {s['tokens']:,} tokens")
    console.print(f"wrote {args.out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from bridges.commands._ui import progress
    from musegen.errors import ParameterError
    from musegen.lyrics.train import LyricTrainConfig, train_lyric_model

    console = Console(stderr=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.corpus / "train.npy").exists():
        raise ParameterError(f"no lyric corpus in {args.corpus}: run `musegen lyrics-corpus --out {args.corpus}`")
    cfg = LyricTrainConfig(steps=args.steps, batch_size=args.batch_size, context=args.context, lr=args.lr,
                           d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, d_ff=args.d_ff,
                           seed=args.seed, eval_every=args.eval_every, ckpt_every=min(100, args.eval_every),
                           init_from=str(args.init_from or ""), bf16=args.bf16)
    if args.bf16 and not torch.cuda.is_available():  # the lyric model trains on the CPU here
        from musegen.train import check_bf16

        check_bf16(True, torch.device("cpu"))
    command = "musegen " + shlex.join(sys.argv[1:])
    quiet_hf_loading()  # no tqdm bar of transformers' own when the model is written
    valid = "-"
    with progress(console, "[bold]lyrics-train", total=cfg.steps) as bar:

        def on_step(step: int, loss: float, info: dict) -> None:
            nonlocal valid
            if "valid_nll" in info:
                valid = f"{info['valid_nll']:.3f}"
                bar.print(f"step {step}: train loss {loss:.3f}, valid NLL {info['valid_nll']:.3f}, "
                          f"{info['tokens_per_s']:.0f} tokens/s")
            bar.update(step, info=f"loss {loss:.3f} valid {valid}")

        final = train_lyric_model(args.corpus, args.run_dir, cfg, command=command, on_step=on_step)
    console.print(f"wrote {final}")
    return 0


# ------------------------------------------------------------------ lyrics and melody
def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("takes"), help="folder for the takes")
    p.add_argument("--model", default=None, help="music model folder (default: the shipped model)")
    p.add_argument("--device", default=None,
                   help="auto, cpu, cuda, cuda:N or mps (default: auto = cuda, then mps, then cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for decoding (default: all cores, at most 4; 1 on a busy machine)")


def _studio(args: argparse.Namespace, lyric_model: str | None = None):  # noqa: ANN202
    import torch

    from musegen.errors import ParameterError
    from musegen.studio import Studio

    if args.threads is not None and not 1 <= args.threads <= 256:
        raise ParameterError(f"--threads must be in 1..256, got {args.threads}")
    studio = Studio(model=args.model, device=args.device, threads=args.threads, lyric_model=lyric_model)
    if studio.device.type == "cpu":
        torch.set_num_threads(studio.threads)  # the lyric model decodes outside the Studio's own limit
    return studio


def quiet_hf_loading() -> None:
    """No 'Loading weights' progress bar from transformers when the lyric model loads."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def run_lyrics(args: argparse.Namespace) -> int:
    from bridges.commands.generate import _load, _write, check_out_dir, progress_kw
    from musegen.errors import MusegenError, ParameterError
    from musegen.lyrics.writer import melody_track, phrases

    check_out_dir(args.out)

    kw = request_kw(args, "lyrics")  # every value checked before a model loads
    if args.lyric_model is not None and not Path(args.lyric_model).expanduser().is_dir():
        raise ParameterError(f"--lyric-model {args.lyric_model!r}: no such folder")
    clip = _load(args.input)
    studio = _studio(args, lyric_model=args.lyric_model)
    quiet_hf_loading()
    try:  # one progress step per line of lyrics (lyrics_for itself refuses a bad track)
        track = melody_track(clip) if kw.get("track") is None else kw["track"]
        n_lines = len(phrases(clip, track)) if 0 <= track < len(clip.tracks) else 1
    except MusegenError:
        n_lines = 1
    with progress_kw("lyrics", n_lines, "lines") as pkw:
        takes = studio.lyrics_for(clip, **kw, **pkw)
    paths = _write(takes, args, args.input.stem, "lyrics")
    for path, t in zip(paths, takes):
        f = t.params["figures"]
        print(f"\n{path.name}  (track {t.params['track']}, seed {t.seed}): "
              f"syllable fit {_pct(f['syllable_fit'])}, rhyme fit {_pct(f['rhyme_fit'])}, "
              f"stress alignment {_pct(f['stress_alignment'])}, "
              f"stressed syllables on a beat {_pct(f.get('stressed_on_beat_sung', f['stressed_on_beat']))} "
              f"as sung ({_pct(f['stressed_on_beat'])} by the dictionary), "
              f"{t.seconds:.1f} s for the melody ({len(takes)} variation{'s' if len(takes) > 1 else ''})")
        for n, (line, notes) in enumerate(zip(t.params["lines"], t.params["phrases"]), 1):
            print(f"  {n:2d}  [{notes:2d}]  {line}")
    return 0


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9']+", text.lower().replace("'", ""))[:4]
    return "-".join(words) or "melody"


def run_melody(args: argparse.Namespace) -> int:
    from bridges.commands.generate import _write, check_out_dir, parse_style_weights, progress_kw
    from musegen.errors import ParameterError
    from musegen.lyrics.melody import plan_melody

    check_out_dir(args.out)
    if (args.text is None) == (args.text_file is None):
        raise ParameterError("melody: give the lyric as an argument or with --text-file (one of them)")
    if args.text_file is not None:
        try:
            text = args.text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ParameterError(f"--text-file {str(args.text_file)!r}: cannot read it ({e})") from None
    else:
        text = args.text
    kw = request_kw(args, "melody")  # every value checked before the model loads
    style = None
    if args.style:
        weights = parse_style_weights(args.style)
        style = args.style[0] if len(args.style) == 1 and "=" not in args.style[0] else weights
    plan = plan_melody(text, kw["time_signature"], kw.get("bars_per_line"))  # bad text: before loading
    studio = _studio(args)
    with progress_kw("melody", plan.bars * max(1, kw["variations"])) as pkw:
        takes = studio.melody_for(text, style=style, **kw, **pkw)
    name = _slug(text)
    paths = _write(takes, args, name, "melody")
    for path, t in zip(paths, takes):
        f = t.params["figures"]
        print(f"\n{path.name}  ({t.params['time_signature']}, {t.clip.n_bars} bars, seed {t.seed}): "
              f"{f['syllables']} syllables, {f['notes']} notes, {f['melismas']} melismas, "
              f"one note per syllable: {'yes' if f['one_note_per_syllable'] else 'NO'}, "
              f"stress on a beat {_pct(f['stress_on_beat'])} (strong beats {_pct(f['stress_on_strong_beat'])}), "
              f"phrase ends at line ends: {'yes' if f['phrase_ends_at_line_ends'] else 'no'}, "
              f"key {t.params['key']}, ends on the tonic {_pct(f.get('ends_on_tonic'))}, "
              f"pickups {f['pickups']}/{f['pickup_lines']}, {t.seconds:.1f} s for the request")
        for n, line in enumerate(t.params["plan"]["lines"], 1):
            sung = " ".join(line["syllables"])
            print(f"  {n:2d}  [{len(line['syllables']):2d} notes, {line['bars']} bars]  {sung}")
    return 0
