"""The committed default model: it loads, it is the model its card describes, it generates."""

import json

import numpy as np
import pytest
import torch

from musegen import Clip
from musegen.examples import example_path
from musegen.studio import DEFAULT_MODEL_DIR, Studio
from musegen.train import token_nll

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "musegen.json").exists(),
                                reason="no shipped model in this checkout")


@pytest.fixture(scope="module")
def studio():
    return Studio(device="cpu")


def test_hf_automodel_loads_the_lm_part():
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(DEFAULT_MODEL_DIR).eval()
    assert hf.config.model_type == "llama"
    assert hf.config.vocab_size == 499


def test_heldout_sample_nll_matches_the_card(studio):
    card = json.loads((DEFAULT_MODEL_DIR / "eval.json").read_text())["heldout_sample"]
    z = np.load(DEFAULT_MODEL_DIR / "heldout_sample.npz")
    off = z["offsets"]
    windows = [(int(s), z["tokens"][off[i]:off[i + 1]].astype(np.int64))
               for i, s in enumerate(z["styles"])]
    nll = token_nll(studio.model, windows)
    mean = float(sum(x.sum() for x in nll) / sum(len(x) for x in nll))
    assert len(windows) == card["windows"]
    assert mean == pytest.approx(card["mean_nll"], abs=2e-3)


def test_card_states_the_figures_it_was_measured_with():
    card = (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text()
    figures = json.loads((DEFAULT_MODEL_DIR / "eval.json").read_text())
    assert f"{figures['nll']['model_mean']:.4f}" in card
    assert f"{figures['nll']['baseline_mean']:.4f}" in card
    # the model beats the n-gram baseline in every style
    nll = figures["nll"]
    assert all(nll["model"][s] < nll["baseline"][s] for s in nll["model"])


def test_shipped_model_continues_a_real_melody(studio, tmp_path):
    clip = Clip.load(example_path("folk"))
    takes = studio.continue_(clip, bars=2, variations=2, style="irish-dance", seed=0)
    assert [t.clip.n_bars for t in takes] == [2, 2]
    assert all(t.novelty is not None for t in takes)
    assert len(studio.style_names) >= 8
    with torch.no_grad():
        assert torch.isfinite(studio.model.styles.weight).all()


def test_the_card_names_no_folder_of_the_machine_it_was_written_on(tmp_path):
    from pathlib import Path

    from musegen import modelcard

    here = Path(modelcard.__file__).resolve().parents[1]
    assert modelcard.shown_path(here / "musegen" / "models" / "default") == "musegen/models/default"
    assert modelcard.shown_path(Path.home() / "runs" / "a") == "~/runs/a"
    card = (here / "musegen" / "models" / "default" / "MODEL_CARD.md").read_text()
    assert str(here) not in card.split("## Reproduce")[0]  # the record above the commands
