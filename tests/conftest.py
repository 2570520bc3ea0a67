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
