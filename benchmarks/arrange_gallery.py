"""docs/gallery-arrange.md: three German folk songs from the test split (Essen) harmonized in
`bach-chorale` style by `Studio.arrange`, each as two small score images (the melody as given,
and the four-voice arrangement), rendered by MuseScore 3 (`benchmarks.gallery.score_png`).

    python -m benchmarks.arrange_gallery

Uses the test split that `python -m benchmarks.arrange` caches (built on first use). Needs
`musescore3` (Debian) and Pillow. Writes docs/gallery-arrange.md and docs/gallery/arrange/*.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.arrange import CACHE, SEED, folk_melody, test_split
from benchmarks.gallery import score_png

ROOT = Path(__file__).resolve().parents[1]
SONGS = 3
BARS = 8


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=CACHE, help="the test split's MIDI (built once)")
    ap.add_argument("--skip", type=int, default=0, help="start at this folk song of the split")
    args = ap.parse_args(argv)

    from musegen.evaluation import musicianship as M
    from musegen.studio import Studio

    split = test_split(args.cache)
    studio = Studio(device="cpu", threads=1)
    songs = []
    for pid, path in sorted(split["german-folk"])[args.skip:]:
        clip = folk_melody(path, studio.engine.tok)  # on the grid (abc2midi starts notes a tick late)
        if clip is not None and clip.n_bars >= BARS:
            songs.append((pid, clip.slice_bars(0, BARS)))
        if len(songs) == SONGS:
            break
    out_dir = ROOT / "docs" / "gallery" / "arrange"
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Gallery: arrange", "",
             "Three German folk songs of the Essen collection from the corpus's test split (the "
             "model never saw them), their first 8 bars harmonized as a chorale: "
             "`studio.arrange(melody, add=\"satb\", style=\"bach-chorale\", roles=[\"soprano\"])`, "
             f"seed {SEED}, the first take. The melody (top staff) is note for note the song's. "
             "Made by `python -m benchmarks.arrange_gallery` (MuseScore 3).", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for k, (pid, melody) in enumerate(songs):
            take = studio.arrange(melody, add="satb", style="bach-chorale", roles=["soprano"],
                                  variations=1, seed=SEED + k)[0]
            assert take.clip.tracks[0].notes == melody.tracks[0].notes
            name = pid.rsplit("/", 1)[-1].replace("#", "-")
            mel_mid, arr_mid = Path(tmp) / f"{name}-melody.mid", Path(tmp) / f"{name}-satb.mid"
            melody.save(mel_mid)
            take.clip.save(arr_mid)
            mel_png = score_png(mel_mid, out_dir / f"{name}-melody.png")
            arr_png = score_png(arr_mid, out_dir / f"{name}-satb.png")
            figs = {"chords on beats": M.chord_on_beat_share(take.clip),
                    "parallels per bar": M.parallel_fifths_per_bar(take.clip)
                    + M.parallel_octaves_per_bar(take.clip),
                    "crossings": M.voice_crossing_share(take.clip, [0, 1, 2, 3])}
            lines += [f"## {k + 1}. `{pid}`", "",
                      "Melody:  ", f"![{name} melody](gallery/arrange/{mel_png.name})", "",
                      "Arrangement (soprano = the melody; alto, tenor, bass written by the model):  ",
                      f"![{name} arrangement](gallery/arrange/{arr_png.name})", "",
                      "Figures of this take: " + ", ".join(
                          f"{k2} {v:.2f}" if v is not None else f"{k2} -" for k2, v in figs.items()),
                      ""]
    (ROOT / "docs" / "gallery-arrange.md").write_text("\n".join(lines) + "\n")
    print(f"wrote docs/gallery-arrange.md and {len(songs) * 2} images in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
