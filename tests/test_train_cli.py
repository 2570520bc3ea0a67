"""`musegen train` end to end: learning a new style, and data-parallel training (slow)."""

import json
import shutil
import subprocess
import sys

import pytest

from bridges.cli import main
from musegen.studio import Studio

from .conftest import REALWORLD


def test_learn_my_style_adds_a_style_everywhere(tiny_model_dir, tmp_path):
    songs = tmp_path / "my_songs"
    songs.mkdir()
    for p in REALWORLD[:4]:
        shutil.copy(p, songs / p.name)
    (songs / "broken.mid").write_bytes(b"MThd garbage")
    out = tmp_path / "mine-model"
    rc = main(["train", "--init", str(tiny_model_dir), "--midi-dir", str(songs), "--style", "mine",
               "--run-dir", str(tmp_path / "run"), "--out", str(out), "--steps", "4",
               "--batch-size", "2", "--context", "128"])
    assert rc == 0
    styles = json.loads((out / "styles.json").read_text())
    assert [s["name"] for s in styles][-1] == "mine"
    studio = Studio(model=out)
    assert studio.style_names[-1] == "mine"
    before = Studio(model=tiny_model_dir)
    # only the new row was learned: the old styles are bit-identical
    assert (studio.styles[0].vector == before.styles[0].vector).all()
    takes = studio.continue_(None, bars=2, variations=1, style="mine", seed=1)
    assert takes[0].clip.n_bars == 2


def test_learn_style_needs_all_three_flags(tiny_model_dir, tmp_path, capsys):
    rc = main(["train", "--init", str(tiny_model_dir), "--style", "mine"])
    assert rc == 1 and "--midi-dir" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    """torchrun with 2 gloo processes trains and exports one model."""
    from musegen.corpus import build_corpus

    midi = tmp_path / "midi" / "alpha"
    midi.mkdir(parents=True)
    for p in REALWORLD:
        shutil.copy(p, midi / p.name)
    build_corpus(tmp_path / "corpus", midi_dir=tmp_path / "midi", workers=1)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "musegen", "train", "--corpus", str(tmp_path / "corpus"),
           "--run-dir", str(tmp_path / "run"), "--steps", "4", "--batch-size", "2", "--context", "128",
           "--d-model", "32", "--layers", "2", "--heads", "2", "--d-ff", "64", "--device", "cpu",
           "--threads", "1", "--eval-every", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4]
