"""docs/gallery.md: for each style family, a real prompt from the test split and one take that
continues it, as small score images (MuseScore 3) and a short compressed audio file.

    python -m benchmarks.gallery --corpus data/corpus-default

Needs (Debian packages): `musescore3` (score PNGs, run headless with QT_QPA_PLATFORM=offscreen),
`fluidsynth` and `fluid-soundfont-gm` (audio, /usr/share/sounds/sf2/FluidR3_GM.sf2), and
`vorbis-tools` (`oggenc`); Pillow (with matplotlib) trims and shrinks the PNGs. Writes
docs/gallery.md and docs/gallery/*.png|*.ogg (a few hundred KB in all).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import replace
from pathlib import Path

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
# (style, family): one per family, two for the many folk styles
ENTRIES = (("irish-dance", "folk"), ("chinese-folk", "folk"), ("bach-chorale", "chorale"),
           ("renaissance-mass", "Renaissance polyphony"))
PROMPT_BARS = 4
TAKE_BARS = 4
AUDIO_S = 14.0
WIDTH_PX = 640


def _run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=180, **kw)  # type: ignore[arg-type]


def score_png(mid: Path, out: Path, width: int = WIDTH_PX) -> Path:
    """MuseScore's first page of `mid`, trimmed to the music and scaled to `width` pixels,
    saved as a 16-grey palette PNG."""
    from PIL import Image, ImageChops

    tmp = mid.with_suffix(".png")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    _run(["mscore3", "-r", "110", "-o", str(tmp), str(mid)], env=env)
    raw = Image.open(mid.with_name(mid.stem + "-1.png")).convert("RGBA")
    page = Image.alpha_composite(Image.new("RGBA", raw.size, "white"), raw).convert("L")
    bg = Image.new("L", page.size, 255)
    box = ImageChops.difference(page, bg).getbbox() or (0, 0, *page.size)
    pad = 8
    page = page.crop((max(0, box[0] - pad), max(0, box[1] - pad),
                      min(page.width, box[2] + pad), min(page.height, box[3] + pad)))
    if page.width > width:
        page = page.resize((width, round(page.height * width / page.width)), Image.LANCZOS)
    buf = io.BytesIO()
    page.quantize(16).save(buf, format="PNG", optimize=True)
    out.write_bytes(buf.getvalue())
    return out


def audio_ogg(mid: Path, out: Path, seconds: float = AUDIO_S) -> Path:
    """`mid` rendered by fluidsynth (General MIDI soundfont), cut to `seconds` with a short
    fade, mono 22.05 kHz, Vorbis at the lowest quality."""
    import numpy as np

    wav = mid.with_suffix(".wav")
    _run(["fluidsynth", "-ni", "-q", "-F", str(wav), "-r", "22050", str(SOUNDFONT), str(mid)])
    with wave.open(str(wav)) as w:
        ch, rate = w.getnchannels(), w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, ch).mean(1)
    x = x[: int(seconds * rate)]
    fade = min(len(x), int(0.5 * rate))
    x[len(x) - fade:] *= np.linspace(1, 0, fade)
    mono = mid.with_name(mid.stem + "-mono.wav")
    with wave.open(str(mono), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(x, -32768, 32767).astype(np.int16).tobytes())
    _run(["oggenc", "-Q", "-q", "-1", "-o", str(out), str(mono)])
    return out


def _with_key(clip: object, key: str) -> object:
    """`clip` with a key-signature event of `key` (MuseScore shows a key only from one), on
    the writer's channels (MuseScore 3 ignores the key of a take whose tracks share one)."""
    from musegen.clip import KeySignature

    tracks = tuple(replace(t, channel=None) for t in clip.tracks)  # type: ignore[attr-defined]
    return replace(clip, tracks=tracks, key_signatures=(KeySignature.of(key, as_spelled=False),),  # type: ignore[type-var]
                   key=key)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="model folder (default: the shipped model)")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-default"),
                    help="built corpus folder (default: data/corpus-default)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the takes (default: 0)")
    ap.add_argument("--out", type=Path, default=Path("docs"), help="docs folder (default: docs)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a generation parameter for every take, repeatable (default: none)")
    args = ap.parse_args(argv)
    for exe in ("mscore3", "fluidsynth", "oggenc"):
        if shutil.which(exe) is None:
            raise SystemExit(f"{exe} not found: apt-get install musescore3 fluidsynth "
                             "fluid-soundfont-gm vorbis-tools")

    from benchmarks.musicianship import parse_set
    from musegen.corpus import Corpus
    from musegen.evaluation.musicianship_run import pick
    from musegen.studio import Studio

    extra = parse_set(args.set)
    studio = Studio(model=args.model, threads=1)
    corpus = Corpus.open(args.corpus)
    tok = corpus.tokenizer()
    names = studio.style_names
    folder = args.out / "gallery"
    folder.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.gallery " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Gallery: real prompts and musegen's takes", "",
             f"Each row: the first {PROMPT_BARS} bars of a held-out (test-split) piece, then one "
             f"take of {TAKE_BARS} bars that continues it (the first of one request, seed "
             f"{args.seed}), model `{studio.model_id}`"
             + (f", parameters {extra}" if extra else "") + ". Scores rendered by MuseScore 3 "
             f"from the MIDI (its import quantizes, so tuplets may look busier than the notes "
             f"are); audio: the prompt followed by the take, first {AUDIO_S:.0f} s, FluidSynth "
             "with the FluidR3 General MIDI soundfont.", "",
             f"Regenerate: `{command.strip()}`.", "",
             "Arrangements (a folk melody harmonized as a chorale by `Studio.arrange`): "
             "[gallery-arrange.md](gallery-arrange.md).", ""]
    with tempfile.TemporaryDirectory(prefix="musegen-gallery-") as tmp:
        for style, fam in ENTRIES:
            if style not in names:
                continue
            raw = [tok.decode(ids) for s, ids in corpus.split("test") if names[s] == style][:40]
            chosen = pick({style: raw}, [style], 1, PROMPT_BARS + TAKE_BARS)
            if not chosen:
                continue
            _, index, piece = chosen[0]
            prompt = _with_key(piece.slice_bars(0, PROMPT_BARS), piece.key or "C major")
            take = studio.continue_(prompt, bars=TAKE_BARS, variations=1, style=style,
                                    seed=args.seed, **extra)[0]
            new = _with_key(take.clip, prompt.key)
            stem = style
            t = Path(tmp)
            prompt.save(t / f"{stem}-prompt.mid")
            new.save(t / f"{stem}-take.mid")
            prompt.concat(new).save(t / f"{stem}-both.mid")
            score_png(t / f"{stem}-prompt.mid", folder / f"{stem}-prompt.png")
            score_png(t / f"{stem}-take.mid", folder / f"{stem}-take.png")
            audio_ogg(t / f"{stem}-both.mid", folder / f"{stem}.ogg")
            voices = sum(1 for tr in new.tracks if tr.notes)
            lines += [f"## {style} ({fam})", "",
                      f"Test piece {index} of {style} in split order, {prompt.key}; the take has "
                      f"{voices} voice{'s' if voices != 1 else ''}.", "",
                      f"Prompt (real, bars 1-{PROMPT_BARS}):", "",
                      f"![{style} prompt](gallery/{stem}-prompt.png)", "",
                      f"Take (bars {PROMPT_BARS + 1}-{PROMPT_BARS + TAKE_BARS}):", "",
                      f"![{style} take](gallery/{stem}-take.png)", "",
                      f"Listen: [prompt then take (ogg)](gallery/{stem}.ogg)", ""]
    total = sum(p.stat().st_size for p in folder.iterdir())
    lines += [f"All files of the gallery: {total / 1024:.0f} KB.", ""]
    (args.out / "gallery.md").write_text("\n".join(lines))
    print(f"wrote {args.out / 'gallery.md'} and {folder} ({total / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
