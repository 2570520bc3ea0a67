from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REALWORLD = sorted((DATA / "realworld").glob("*.mid"))


@pytest.fixture(scope="session")
def realworld_files() -> list[Path]:
    assert len(REALWORLD) >= 6
    return REALWORLD


@pytest.fixture(scope="session")
def corpus_sample(tmp_path_factory) -> list[Path]:
    """A dozen real pieces from music21's corpus written to MIDI: chorales, a Palestrina
    movement and folk tunes of several metres (slow to parse, so shared by all tests)."""
    import music21

    music21.defaults.ticksPerQuarter = 480
    out = tmp_path_factory.mktemp("corpus_sample")
    paths = []
    names = ["bach/bwv269", "bach/bwv66.6", "bach/bwv1.6", "bach/bwv10.7",
             "palestrina/agnus_02"]
    abc = [("essenFolksong/han1", 3), ("essenFolksong/altdeu10", 2),
           ("oneills1850/0001-0050", 1), ("ryansMammoth/AndrewCarr", None),
           ("airdsAirs/book1", 5)]
    for name in names + abc:
        try:
            if isinstance(name, tuple):
                s = music21.corpus.parse(name[0], number=name[1]) if name[1] else \
                    music21.corpus.parse(name[0])
                name = f"{name[0]}-{name[1]}"
            else:
                s = music21.corpus.parse(name)
            mf = music21.midi.translate.streamToMidiFile(s)
        except Exception:  # a missing corpus piece is not this test's concern
            continue
        p = out / (name.replace("/", "_") + ".mid")
        mf.open(str(p), "wb")
        mf.write()
        mf.close()
        paths.append(p)
    assert len(paths) >= 8
    return paths


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny model (2 layers x 32) trained for a few dozen steps on the real-world fixtures
    under three style labels: enough for every generation path, fast to make."""
    import torch

    from musegen import Clip
    from musegen.tokenizer import Tokenizer
    from musegen.train import TrainConfig, export, new_model, train

    tok = Tokenizer()
    pieces = []
    files = REALWORLD + sorted((Path(__file__).parents[1] / "musegen" / "data" / "examples").glob("*.mid"))
    for i, p in enumerate(files):
        c = Clip.load(p)
        if len(c.tracks) <= 16:
            pieces.append((i % 3, tok.encode(c)))
    torch.manual_seed(0)
    names = ["alpha", "beta", "gamma"]
    model = new_model(tok, names, d_model=32, n_layers=2, n_heads=2, d_ff=64, context=256)
    out = tmp_path_factory.mktemp("tiny_model")
    cfg = TrainConfig(steps=30, batch_size=8, context=256, lr=3e-3, warmup=5, eval_every=1000,
                      ckpt_every=1000)
    train(model, tok, pieces, [], cfg, out / "run", device="cpu")
    styles = [{"name": n, "description": f"test style {n}", "pieces": 3} for n in names]
    export(model, out / "model", tok, styles, {"training": {"steps": 30}})
    from musegen.novelty import NoveltyIndex

    NoveltyIndex.build([(p.stem, Clip.load(p)) for p in files]).save(out / "model" / "novelty.npz")
    return out / "model"
