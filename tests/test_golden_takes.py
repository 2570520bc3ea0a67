"""Same seed, same take: the tokens of a few seeded takes from the shipped model, committed.

A change that alters what the model is fed or how a token is drawn (prompt building, encoding
windows, masks, the draw) fails here; a change meant to alter takes regenerates the file with
`python -m tests.test_golden_takes` and says why in its commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "golden_takes.json"
EXAMPLES = Path(__file__).parents[1] / "musegen" / "data" / "examples"


def requests() -> dict:
    from musegen import Clip

    folk, chorale = Clip.load(EXAMPLES / "folk.mid"), Clip.load(EXAMPLES / "chorale.mid")
    return {
        "continue folk 4 bars": lambda s: s.continue_(folk, bars=4, variations=2, seed=11, style="irish-dance"),
        "continue chorale 2 bars, key lock": lambda s: s.continue_(chorale, bars=2, variations=2, seed=5,
                                                                   style="bach-chorale", key="F# minor"),
        "regenerate folk bars 5-6": lambda s: s.regenerate(folk, bars=(5, 6), variations=2, seed=3),
        "blend from nothing": lambda s: s.blend(None, styles={"german-folk": 0.5, "chinese-folk": 0.5},
                                                bars=2, variations=2, seed=2, time_signature=(3, 4), tempo=90),
        "melody for words": lambda s: s.melody_for("Down by the river / where the cold wind blows",
                                                   style="irish-dance", variations=1, seed=4),
    }


def take_tokens(studio) -> dict:
    return {name: [list(t.tokens) for t in run(studio)] for name, run in requests().items()}


@pytest.fixture(scope="module", params=["torch", "onnx"])
def shipped(request):
    """The shipped model on each CPU path: the fast path (ONNX Runtime) draws the same takes
    as the torch reference (its logits agree within 1e-4, far inside any draw's margin here)."""
    from musegen.generate import fast
    from musegen.studio import Studio

    if request.param == "onnx" and not fast.available():
        pytest.skip("onnxruntime not installed (pip install 'musegen[fast]')")
    return Studio(device="cpu", threads=1, backend=request.param)


@pytest.mark.parametrize("name", list(json.loads(GOLDEN.read_text())) if GOLDEN.exists() else [])
def test_same_seed_same_take_as_committed(shipped, name):
    want = json.loads(GOLDEN.read_text())[name]
    got = [list(t.tokens) for t in requests()[name](shipped)]
    assert got == want, f"{name}: the takes changed"


if __name__ == "__main__":  # regenerate the golden file (only when a change is meant to alter takes)
    from musegen.studio import Studio

    GOLDEN.write_text(json.dumps(take_tokens(Studio(device="cpu", threads=1))) + "\n")
    print(f"wrote {GOLDEN}")
