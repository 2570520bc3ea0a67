"""One atomic write: `musegen.atomic` is the only code that writes a temp file and renames it
into place; the old forwarder `musegen.clip.atomic_write_bytes` still works, with a warning."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (file, call) pairs outside musegen/atomic.py that may rename or fsync, and why
ALLOWED = {
    ("musegen/session/journal.py", "os.fsync"),  # the append-only journal syncs each line it appends
    ("musegen/session/recover.py", "os.replace"),  # moves a damaged take to orphans/ (no new bytes)
    ("bridges/commands/lyrics_model.py", "tmp.rename"),  # a whole model folder, which atomic.py does not write
}
WRITE_CALLS = {("os", "replace"), ("os", "rename"), ("os", "fsync"), ("os", "link"), ("tempfile", "mkstemp"),
               ("tempfile", "NamedTemporaryFile")}


def _hand_written_writes() -> list[tuple[str, int, str]]:
    """Calls that rename, link or fsync files (os.replace, Path.replace(target), ...) outside
    musegen/atomic.py."""
    found = []
    for f in sorted([*ROOT.glob("musegen/**/*.py"), *ROOT.glob("bridges/**/*.py")]):
        rel = f.relative_to(ROOT).as_posix()
        if rel == "musegen/atomic.py":
            continue
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)):
                continue
            base = n.func.value.id if isinstance(n.func.value, ast.Name) else None
            name = f"{base}.{n.func.attr}" if base else ast.unparse(n.func)
            by_os = (base, n.func.attr) in WRITE_CALLS
            # Path.replace(target) / Path.rename(target): one argument (str.replace takes two)
            by_path = n.func.attr in ("replace", "rename") and len(n.args) == 1 and not n.keywords
            if (by_os or by_path) and (rel, name) not in ALLOWED:
                found.append((rel, n.lineno, name))
    return found


def test_only_musegen_atomic_renames_a_temp_file_into_place() -> None:
    found = _hand_written_writes()
    assert not found, "write through musegen.atomic instead: " + ", ".join(f"{f}:{ln} {c}" for f, ln, c in found)


def test_the_old_forwarder_warns_and_still_writes(tmp_path: Path) -> None:
    from musegen.clip import atomic_write_bytes

    p = tmp_path / "sub" / "x.bin"
    with pytest.warns(DeprecationWarning, match="musegen.atomic.write_bytes"):
        atomic_write_bytes(p, b"data")
    assert p.read_bytes() == b"data" and not list(p.parent.glob(".*.tmp"))


def test_a_training_checkpoint_is_written_by_musegen_atomic(tmp_path: Path) -> None:
    """`save_training_state` (once a hand-written temp + rename) leaves the final file, no
    temp file, and the mode a new file gets."""
    import torch

    from musegen.atomic import default_file_mode
    from musegen.model import MusegenConfig, MusegenLM
    from musegen.train import TrainConfig, TrainState, _optimizer, load_training_state, save_training_state

    model = MusegenLM(MusegenConfig(vocab_size=40, n_styles=2, d_model=16, n_layers=1, n_heads=2, d_ff=32))
    opt = _optimizer(model, TrainConfig())
    path = tmp_path / "state.pt"
    save_training_state(path, model, opt, TrainState(), TrainConfig(steps=3))
    assert load_training_state(path)["train_config"]["steps"] == 3
    assert (path.stat().st_mode & 0o777) == default_file_mode()
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    assert torch.load(path, weights_only=False)["model_config"]["d_model"] == 16
