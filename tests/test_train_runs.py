"""A run directory belongs to one run: two learned styles never share one, a run is resumed
only with its own arguments, and `train` reports progress when its output is piped."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bridges.cli import main
from musegen.studio import Studio

from .conftest import REALWORLD

EXAMPLES = sorted((Path(__file__).parents[1] / "musegen" / "data" / "examples").glob("*.mid"))
TINY = ["--steps", "3", "--batch-size", "2", "--context", "128", "--threads", "1"]


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """An empty MUSEGEN_HOME and working folder, as on a fresh machine."""
    monkeypatch.setenv("MUSEGEN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture()
def base_model(tiny_model_dir, tmp_path):
    """The tiny model with a model card, like the shipped one."""
    init = tmp_path / "base"
    shutil.copytree(tiny_model_dir, init)
    (init / "MODEL_CARD.md").write_text("# base model\n")
    return init


def _folder(root: Path, name: str, files: list[Path]) -> Path:
    d = root / name
    d.mkdir()
    for f in files:
        shutil.copy(f, d / f.name)
    return d


def _card_pieces(model: Path, style: str) -> int:
    card = (model / "MODEL_CARD.md").read_text()
    m = re.search(rf"## Added style `{style}`\s+Learned from (\d+) pieces", card)
    assert m, card
    return int(m.group(1))


def test_two_learned_styles_are_two_runs(home, base_model, tmp_path, capsys):
    mine = _folder(tmp_path, "my_songs", EXAMPLES)                         # 2 files
    other = _folder(tmp_path, "other_songs", REALWORLD[1:3] + REALWORLD[4:6])  # 4 other files
    assert main(["train", "--init", str(base_model), "--midi-dir", str(mine), "--style", "mine",
                 "--out", "my-model", *TINY]) == 0
    err = capsys.readouterr().err
    assert main(["train", "--init", str(base_model), "--midi-dir", str(other), "--style", "other",
                 "--out", "other-model", *TINY]) == 0
    err2 = capsys.readouterr().err
    a = Studio(model=tmp_path / "my-model")
    b = Studio(model=tmp_path / "other-model")
    assert a.style_names[-1] == "mine" and b.style_names[-1] == "other"
    assert "mine" not in b.style_names
    va, vb = torch.as_tensor(a.styles[-1].vector), torch.as_tensor(b.styles[-1].vector)
    assert not torch.allclose(va, vb)
    # the style table and the card count each run's own pieces only
    n_mine = json.loads((tmp_path / "my-model" / "styles.json").read_text())[-1]["pieces"]
    n_other = json.loads((tmp_path / "other-model" / "styles.json").read_text())[-1]["pieces"]
    assert 1 <= n_mine <= 2 and 3 <= n_other <= 4
    assert _card_pieces(tmp_path / "my-model", "mine") == n_mine
    assert _card_pieces(tmp_path / "other-model", "other") == n_other
    # each run says where its run folder is, and they are not the same one
    run1 = re.search(r"run folder (\S+)", err).group(1)
    run2 = re.search(r"run folder (\S+)", err2).group(1)
    assert run1 != run2 and Path(run1).parent == Path(run2).parent == home / "runs"
    assert "resum" not in err2.lower()
    staged = sorted(p.name for p in (Path(run2) / "midi").rglob("*.mid"))
    assert staged == sorted(p.name for p in other.iterdir())


def test_a_run_is_resumed_only_with_its_own_arguments(home, base_model, tmp_path, capsys):
    mine = _folder(tmp_path, "my_songs", EXAMPLES)
    other = _folder(tmp_path, "other_songs", REALWORLD[1:3])
    run = tmp_path / "run"
    common = ["--init", str(base_model), "--run-dir", str(run), "--out", "m", *TINY]
    assert main(["train", "--midi-dir", str(mine), "--style", "mine", *common]) == 0
    capsys.readouterr()
    # the same folder with another style and other songs: refused, naming what differs
    rc = main(["train", "--midi-dir", str(other), "--style", "other", *common])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{run}" in err and "--style" in err and "'mine'" in err and "'other'" in err
    assert "--midi-dir" in err and "--no-resume" in err
    assert len(err.strip().splitlines()) == 1
    # a changed schedule is a different run too
    rc = main(["train", "--midi-dir", str(mine), "--style", "mine", *common, "--lr", "0.5"])
    err = capsys.readouterr().err
    assert rc == 1 and "--lr" in err
    # the same command resumes (nothing left to do) ...
    assert main(["train", "--midi-dir", str(mine), "--style", "mine", *common]) == 0
    assert "resuming" in capsys.readouterr().err
    # ... and --no-resume starts that folder over for the new run, staging only its songs
    assert main(["train", "--midi-dir", str(other), "--style", "other", *common, "--no-resume"]) == 0
    assert sorted(p.name for p in (run / "midi").rglob("*.mid")) == sorted(p.name for p in other.iterdir())
    assert Studio(model=tmp_path / "m").style_names[-1] == "other"


def test_a_changed_song_folder_is_a_different_run(home, base_model, tmp_path, capsys):
    songs = _folder(tmp_path, "my_songs", EXAMPLES)
    args = ["train", "--init", str(base_model), "--midi-dir", str(songs), "--style", "mine",
            "--out", "m", *TINY]
    assert main(args) == 0
    shutil.copy(REALWORLD[1], songs / REALWORLD[1].name)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert REALWORLD[1].name in err and "--no-resume" in err


def test_library_refuses_to_resume_another_config(tmp_path):
    from musegen import Clip
    from musegen.errors import ParameterError
    from musegen.tokenizer import Tokenizer
    from musegen.train import TrainConfig, new_model, train

    tok = Tokenizer()
    pieces = [(0, tok.encode(Clip.load(p))) for p in EXAMPLES]
    model = new_model(tok, ["a"], d_model=16, n_layers=1, n_heads=2, d_ff=32, context=128)
    cfg = TrainConfig(steps=2, batch_size=2, context=128, warmup=1, ckpt_every=1)
    train(model, tok, pieces, [], cfg, tmp_path, device="cpu")
    with pytest.raises(ParameterError, match=r"steps.*2.*5"):
        train(model, tok, pieces, [], TrainConfig(steps=5, batch_size=2, context=128, warmup=1),
              tmp_path, device="cpu")


def test_piped_train_prints_progress_lines(base_model, tmp_path):
    songs = _folder(tmp_path, "my_songs", EXAMPLES)
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(MUSEGEN_HOME=str(tmp_path / "home"), PYTHONPATH=str(Path(__file__).parents[1]))
    res = subprocess.run(
        [sys.executable, "-m", "musegen", "train", "--init", str(base_model), "--midi-dir", str(songs),
         "--style", "mine", "--out", str(tmp_path / "m"), "--steps", "12", "--batch-size", "2",
         "--context", "128", "--threads", "1"],
        capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stderr.splitlines()
    steps = [x for x in lines if re.match(r"train: \d+/12 \(\d+ %\) loss \d+\.\d+", x)]
    assert len(steps) >= 3, res.stderr
    assert steps[0].startswith("train: 1/12") and steps[-1].startswith("train: 12/12")
    assert any(re.search(r"elapsed \d:\d\d:\d\d, ETA \d:\d\d:\d\d", x) for x in steps)
    assert not any("\x1b[" in x for x in lines)
