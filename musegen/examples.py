"""Small example MIDI files shipped inside the package (for the demo, the README and benchmarks);
`python -m musegen.examples` prints their paths.

- `folk`: a one-voice melody in 4/4 (music21's MIDI test file test07.mid, not part of the
  training corpus).
- `chorale`: J.S. Bach, chorale BWV 66.6, four voices (music21 corpus, written to MIDI).
"""

from __future__ import annotations

from pathlib import Path

_DIR = Path(__file__).parent / "data" / "examples"


def example_path(name: str) -> Path:
    path = _DIR / f"{name}.mid"
    if not path.exists():
        names = sorted(p.stem for p in _DIR.glob("*.mid"))
        raise ValueError(f"no example named {name!r}; there are: {', '.join(names)}")
    return path


if __name__ == "__main__":  # `python -m musegen.examples`: where the bundled files are
    for p in sorted(_DIR.glob("*.mid")):
        print(p)
