"""The lyric model's training settings share the music model's names (batch_size, context,
d_model, n_layers, n_heads, d_ff, ckpt_every); records saved under the old names still load,
and `musegen lyrics-train` runs, saves atomically and resumes on a tiny corpus."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest

from musegen.errors import ParameterError
from musegen.lyrics.lm import SHIPPED
from musegen.lyrics.train import OLD_NAMES, LyricTrainConfig
from musegen.train import TrainConfig


def test_the_settings_use_the_music_models_names() -> None:
    from musegen.model import MusegenConfig

    ours = {f.name for f in fields(LyricTrainConfig)}
    music = {f.name for f in fields(TrainConfig)} | {f.name for f in fields(MusegenConfig)}
    for name in ("batch_size", "context", "d_model", "n_layers", "n_heads", "d_ff", "ckpt_every"):
        assert name in ours and name in music, name
    assert not ours & set(OLD_NAMES)  # no old name is left as a field


OLD_RECORD = Path(__file__).parent / "data" / "lyric_record_old_names.json"  # the 2026-11 shipped model's


def test_a_record_under_the_old_names_still_loads() -> None:
    record = json.loads(OLD_RECORD.read_text())
    assert "seq_len" in record["config"]  # saved before the rename
    cfg = LyricTrainConfig.from_dict(record["config"])
    old = record["config"]
    assert (cfg.batch_size, cfg.context, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff, cfg.ckpt_every) == (
        old["batch"], old["seq_len"], old["hidden"], old["layers"], old["heads"], old["ffn"], old["save_every"])
    assert cfg.steps == old["steps"] and cfg.lr == old["lr"]


def test_round_trip_and_unknown_names() -> None:
    cfg = LyricTrainConfig(steps=7, batch_size=3, context=64, d_model=48, n_layers=2, ckpt_every=5)
    assert LyricTrainConfig.from_dict(asdict(cfg)) == cfg
    with pytest.raises(ParameterError, match="hidden_size"):
        LyricTrainConfig.from_dict({"hidden_size": 32})


def test_the_card_of_an_old_record_reads_its_settings(tmp_path: Path) -> None:
    from musegen.lyrics.evaluate import write_card

    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(OLD_RECORD, folder / "musegen_lyrics.json")
    figures = {"test_stanzas": 1, "test_tokens": 10, "model_nll": 3.0, "model_ppl": 20.1,
               "baseline": {"order": 3, "test_nll": 4.0, "valid_nll_by_order": {3: 4.1}},
               "baseline_train_tokens": 100, "baseline_ppl": 54.6, "improvement": 0.25}
    card = write_card(folder, figures, []).read_text()
    assert "4 layers x 256, 4 heads, feed-forward 768" in card
    assert "1,600 steps x 24 windows x 256 tokens" in card


@pytest.fixture()
def tiny_lyric_corpus(tmp_path: Path) -> Path:
    """The shipped tokenizer and a few thousand tokens of planned verse."""
    from transformers import AutoTokenizer

    from musegen.lyrics import data as D

    corpus = tmp_path / "corpus"
    tok = AutoTokenizer.from_pretrained(SHIPPED)
    tok.save_pretrained(corpus / "tokenizer")
    lines = [D.Line(t, n, t.split()[-1], 0) for t, n in [("down by the river where the cold wind blows", 10),
                                                         ("the light is falling on the sea", 8),
                                                         ("and all the birds are singing now", 8),
                                                         ("i walk alone along the shore", 8)]]
    text = D.format_stanza(lines, ["river"]) * 40
    ids = np.array(tok(text, add_special_tokens=False)["input_ids"], dtype=np.uint16)
    np.save(corpus / "train.npy", ids)
    np.save(corpus / "valid.npy", ids[: len(ids) // 2])
    return corpus


def test_lyrics_train_flags_name_the_settings_and_a_run_resumes(tiny_lyric_corpus: Path, tmp_path: Path) -> None:
    from bridges.cli import main

    run = tmp_path / "run"
    flags = ["lyrics-train", "--corpus", str(tiny_lyric_corpus), "--run-dir", str(run), "--batch-size", "2",
             "--context", "16", "--d-model", "32", "--layers", "1", "--heads", "2", "--d-ff", "64",
             "--eval-every", "2", "--threads", "1"]
    assert main([*flags, "--steps", "2"]) == 0
    rec = json.loads((run / "final" / "musegen_lyrics.json").read_text())
    cfg = LyricTrainConfig.from_dict(rec["config"])
    assert (cfg.batch_size, cfg.context, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff, cfg.ckpt_every) == (
        2, 16, 32, 1, 2, 64, 2)
    assert set(rec["config"]) == {f.name for f in fields(LyricTrainConfig)}  # saved under the new names
    assert not list(run.rglob("*.tmp"))  # the state was written atomically
    assert main([*flags, "--steps", "3"]) == 0  # resumes at step 2
    rec = json.loads((run / "final" / "musegen_lyrics.json").read_text())
    assert rec["steps"] == 3 and [h["step"] for h in rec["history"]] == [2, 3]


def test_a_run_starts_from_another_models_weights_in_bf16(tiny_lyric_corpus: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`--init-from` continues a finished model (the step-0 loss is the old model's, not a random one's),
    `--bf16` trains (on any CPU: its refusal where bf16 is emulated is tested in test_cli_long_jobs),
    and a model of another shape is refused naming the flag."""
    import musegen.train
    from bridges.cli import main

    monkeypatch.setattr(musegen.train, "cpu_has_bf16", lambda: True)

    shape = ["--batch-size", "2", "--context", "16", "--d-model", "32", "--layers", "1", "--heads", "2",
             "--d-ff", "64", "--eval-every", "4", "--threads", "1", "--corpus", str(tiny_lyric_corpus)]
    assert main(["lyrics-train", *shape, "--run-dir", str(tmp_path / "a"), "--steps", "30", "--lr", "0.01"]) == 0
    first = json.loads((tmp_path / "a" / "final" / "musegen_lyrics.json").read_text())
    assert main(["lyrics-train", *shape, "--run-dir", str(tmp_path / "b"), "--steps", "4", "--bf16",
                 "--init-from", str(tmp_path / "a" / "final")]) == 0
    second = json.loads((tmp_path / "b" / "final" / "musegen_lyrics.json").read_text())
    assert second["config"]["bf16"] and second["config"]["init_from"].endswith("final")
    # after 4 steps the continued model is where the first one ended, far below the first one's own step 4
    assert second["history"][0]["valid_nll"] < first["history"][0]["valid_nll"] - 0.5
    assert second["history"][0]["valid_nll"] < first["valid_nll"] + 0.1
    capsys.readouterr()
    assert main(["lyrics-train", *shape, "--d-model", "48", "--run-dir", str(tmp_path / "c"), "--steps", "1",
                 "--init-from", str(tmp_path / "a" / "final")]) == 1
    assert "--init-from" in capsys.readouterr().err and not (tmp_path / "c" / "final").exists()
