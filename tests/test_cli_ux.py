"""The command line as a new user meets it: help with defaults for every option, one clear line
(no traceback, exit 1) for every user error, and progress on stderr for the long commands."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bridges.cli import build_parser, main
from musegen import Clip

ROOT = Path(__file__).parents[1]
FOLK = ROOT / "musegen" / "data" / "examples" / "folk.mid"


def walk(parser: argparse.ArgumentParser, name: str = "musegen"):
    """(command, parser) for musegen and every sub-command, nested ones too."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from walk(sub, f"{name} {sub_name}")


# ---------------------------------------------------------------- --help
def test_every_option_of_every_command_has_help_and_a_default():
    missing, no_default = [], []
    commands = list(walk(build_parser()))
    assert len(commands) > 25
    for name, parser in commands:
        text = re.sub(r"\s+", "", parser.format_help())  # renders every help: a stray % would raise
        for a in parser._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            label = f"{name} {'/'.join(a.option_strings) or a.dest}"
            if not a.help or a.help == argparse.SUPPRESS:
                missing.append(label)
                continue
            if not a.option_strings or a.required or a.default is False or "required" in a.help:
                continue  # positionals, required options and flags have no default to show
            if a.default is None:  # the help must say what happens without the option
                if "default" not in a.help.lower():
                    no_default.append(label)
            elif "default" not in a.help.lower() and f"(default:{a.default})".replace(" ", "") not in text:
                no_default.append(label)
    assert not missing, f"options without help: {missing}"
    assert not no_default, f"options whose help shows no default: {no_default}"


@pytest.mark.parametrize("command,option,shown", [
    ("continue", "--bars", "(default: 8)"),
    ("continue", "--variations", "(default: 4)"),
    ("continue", "--temperature", "(default: 1.0)"),
    ("continue", "--top-p", "(default: 0.95)"),
    ("continue", "--out", "(default: takes)"),
    ("blend", "--bars", "(default: 8)"),
    ("morph", "--steps", "(default: 5)"),
    ("morph", "--bars", "(default: 4)"),
    ("lyrics", "--temperature", "(default: 0.9)"),
    ("melody", "--top-p", "(default: 0.95)"),
    ("train", "--batch-size", "(default: 16)"),
])
def test_help_shows_the_default_of_the_most_used_options(command, option, shown, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = re.sub(r"\s+", " ", capsys.readouterr().out) + " "
    entry = re.search(rf" {re.escape(option)} [A-Z_]+ (.*?)(?= --[a-z][\w-]* | $)", text)
    assert entry and shown in entry[1], (entry and entry[1], text)


def test_the_defaults_the_help_names_are_the_studios(tiny_model_dir):
    """--temperature / --top-p default to None (the library's choice); the help says 1.0 / 0.95:
    a take generated without them records what the library used."""
    from bridges.commands.generate import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
    from musegen.studio import Studio

    [take] = Studio(model=tiny_model_dir, device="cpu", threads=1).continue_(None, bars=1, variations=1, seed=1)
    assert take.params["temperature"] == DEFAULT_TEMPERATURE
    assert take.params["top_p"] == DEFAULT_TOP_P
    assert take.params["style_strength"] == 1.0


# ---------------------------------------------------------------- user errors
@pytest.fixture
def no_gpu(monkeypatch):
    """The machine of the report: no CUDA, no MPS (also true on a test machine that has them)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


ERRORS = [
    (["continue", "{folk}", "--device", "cuda"], "device 'cuda' is not available on this machine; available: auto, cpu"),
    (["continue", "{folk}", "--device", "cuda:1"], "device 'cuda:1' is not available"),
    (["continue", "{folk}", "--device", "nonsense"], "device 'nonsense' is not available on this machine"),
    (["continue", "."], ".: is a folder, not a file"),
    (["continue", "{tmp}"], "is a folder, not a file"),
    (["continue", "{fifo}"], "fifo.mid: is a FIFO (named pipe), not a regular file"),
    (["continue", "{tmp}/missing.mid"], "missing.mid: cannot open: No such file or directory"),
    (["continue", "{text}"], "notes.txt: not a Standard MIDI File"),
    (["continue", "{folk}", "--out", "{text}"], "--out '{text}' is a file, not a folder"),
    (["continue", "{folk}", "--out", "{text}/takes"], "lies under '{text}', which is a file"),
    (["continue", "{folk}", "--bars", "0"], "bars must be an integer in 1..256, got 0"),
    (["continue", "{folk}", "--variations", "0"], "variations must be an integer in 1..64, got 0"),
    (["continue", "{folk}", "--style", "unknown"], "unknown style 'unknown'"),
    (["continue", "{folk}", "--pitch-range", "high"], "--pitch-range must look like 55-84, got 'high'"),
    (["continue", "{folk}", "--pitch-range", "84-55"], "pitch_range must satisfy 0 <= low <= high <= 127, got (84, 55)"),
    (["continue", "{folk}", "--threads", "0"], "--threads must be in 1..256, got 0"),
    (["continue", "{folk}", "--temperature", "0"], "temperature must be in 0.05..5.0, got 0.0"),
    (["continue", "{folk}", "--key", "H major"], "key 'H major'"),
    (["continue", "{folk}", "--model", "{tmp}/no-model"], "no-model"),
    (["regenerate", "{folk}", "--bars", "5-3"], "bars 5..3: the first bar (5) is after the last (3)"),
    (["regenerate", "{folk}", "--bars", "5-"], "--bars must look like 5-6 (1-based, inclusive), got '5-'"),
    (["regenerate", "{folk}", "--bars", "40-50"], "bars 40..50 outside the clip's bars 1..45"),
    (["regenerate", "{folk}", "--bars", "0"], "bars 0..0 outside the clip's bars 1..45"),
    (["blend", "--style", "irish-dance=lots"], "--style 'irish-dance=lots': the weight must be a number"),
    (["blend", "{tmp}", "--style", "irish-dance"], "is a folder, not a file"),
    (["morph", "--from", "irish-dance", "--to", "nope"], "unknown style 'nope'"),
    (["morph", "--from", "irish-dance", "--to", "bach-chorale", "--steps", "1"], "steps must be in 2..64, got 1"),
    (["render", "{folk}", "--wav", "{tmp}/x.wav", "--soundfont", "/nonexist.sf2"],
     "--soundfont '/nonexist.sf2': no such file"),
    (["render", "{folk}", "--png", "{tmp}/out/roll.png", "--wav", "{tmp}/out/x.wav", "--soundfont", "{tmp}/gone.sf2"],
     "--soundfont '{tmp}/gone.sf2': no such file"),  # and no PNG written before the refusal
    (["render", "{folk}"], "give --png OUT.png and/or --wav OUT.wav"),
    (["render", "{tmp}", "--png", "{tmp}/x.png"], "is a folder, not a file"),
    (["lyrics", "{tmp}"], "is a folder, not a file"),
    (["lyrics", "{folk}", "--device", "cuda"], "device 'cuda' is not available on this machine"),
    (["lyrics", "{folk}", "--out", "{text}"], "--out '{text}' is a file, not a folder"),
    (["melody", "la la la", "--out", "{text}"], "--out '{text}' is a file, not a folder"),
    (["melody", "la la la", "--device", "mps"], "device 'mps' is not available on this machine"),
    (["demo", "--out", "{text}"], "--out '{text}' is a file, not a folder"),
]


@pytest.mark.parametrize("argv,fragment", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_a_user_error_is_one_line_naming_the_value(argv, fragment, tmp_path, monkeypatch, no_gpu, capsys):
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("not a MIDI file\n")
    fifo = tmp_path / "fifo.mid"
    os.mkfifo(fifo)
    fill = {"folk": FOLK, "tmp": tmp_path, "text": text, "fifo": fifo}
    argv = [a.format(**fill) for a in argv]
    if "--out" not in argv and argv[0] not in ("render",):
        argv += ["--out", str(tmp_path / "out")]
    rc = main(argv)  # an exception escaping here is the traceback a user would see
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert len(err.splitlines()) == 1 and err.startswith(f"musegen {argv[0]}: error: "), err
    assert fragment.format(**fill) in err, err
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("argv, fragment", [
    (["serve", "--osc-port", "99999"], "argument --osc-port: port 99999 is outside 0..65535"),
    (["serve", "--reply-port", "x"], "argument --reply-port: 'x' is not a port number"),
])
def test_a_bad_port_is_a_usage_error_not_a_traceback(argv, fragment, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:  # argparse's usage error: usage, then one line naming the value
        main(argv + ["--session", str(tmp_path / "s")])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(fragment)
    assert not (tmp_path / "s").exists()


def test_pick_device_names_what_this_machine_has(no_gpu):
    from musegen.errors import ParameterError
    from musegen.model import available_devices, pick_device

    assert available_devices() == ["cpu"]
    assert pick_device(None).type == pick_device("auto").type == pick_device("cpu").type == "cpu"
    with pytest.raises(ParameterError, match=r"device 'cuda' is not available on this machine; available: auto, cpu"):
        pick_device("cuda")


# ---------------------------------------------------------------- progress
PLAIN = r"{label}: \d+/{total} \(\d+ %\) {unit}; elapsed \d:\d\d:\d\d"


def test_a_piped_command_prints_progress_lines(tiny_model_dir, tmp_path):
    """stdout and stderr are pipes (no terminal): plain progress lines on stderr, the table on
    stdout, no escape codes anywhere."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "musegen", "continue", str(FOLK), "--bars", "2", "--variations", "2",
                          "--model", str(tiny_model_dir), "--device", "cpu", "--threads", "1", "--seed", "3",
                          "--out", str(tmp_path / "takes")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert lines and all(re.match(PLAIN.format(label="continue", total=4, unit="bars"), x) for x in lines), lines
    assert lines[-1].startswith("continue: 4/4 (100 %) bars;") and lines[-1].endswith(", done")
    assert "\x1b[" not in res.stderr + res.stdout
    assert "2 takes" in res.stdout and len(list((tmp_path / "takes").glob("*.mid"))) == 2


@pytest.fixture(scope="module")
def tune(tmp_path_factory) -> Path:
    """The first four bars of the folk example (two short phrases): quick to set words to."""
    path = tmp_path_factory.mktemp("tune") / "tune.mid"
    Clip.load(FOLK).slice_bars(0, 4).save(path)
    return path


@pytest.mark.parametrize("argv,label,total,unit", [
    (["regenerate", "{tune}", "--bars", "2-3", "--variations", "2"], "regenerate", 4, "bars"),
    (["blend", "--style", "alpha=0.5", "--style", "beta=0.5", "--bars", "2", "--variations", "2"], "blend", 4, "bars"),
    (["morph", "{tune}", "--from", "alpha", "--to", "gamma", "--steps", "3", "--bars", "1"], "morph", 3, "bars"),
    (["melody", "down by the river / where the wind blows", "--variations", "2"], "melody", r"\d+", "bars"),
    (["lyrics", "{tune}", "--variations", "1", "--candidates", "1", "--rhyme", "none"], "lyrics", r"\d+", "lines"),
    (["demo"], "demo", 32, "bars"),  # the shipped model: the demo asks for its irish-dance style
])
def test_every_long_command_shows_progress(argv, label, total, unit, tune, tiny_model_dir, tmp_path, capsys):
    argv = [a.format(tune=tune) for a in argv] + ["--out", str(tmp_path / "out")]
    if argv[0] != "demo":
        argv += ["--model", str(tiny_model_dir), "--device", "cpu", "--threads", "1", "--seed", "2"]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    lines = [x for x in err if re.match(PLAIN.format(label=label, total=total, unit=unit), x)]
    assert lines and lines[-1].endswith(", done"), err
    assert len(list((tmp_path / "out").rglob("*.mid"))) >= 1


def test_progress_reaches_the_end_only_when_the_takes_are_done(tiny_model_dir):
    """The sampler reports bars *finished*: a row still writing its last bar is not at 100 %."""
    from musegen.studio import Studio

    seen: list[float] = []
    Studio(model=tiny_model_dir, device="cpu", threads=1).continue_(
        Clip.load(FOLK), bars=3, variations=1, seed=5, on_progress=seen.append)
    assert seen and seen == sorted(seen), seen
    assert all(f < 1.0 for f in seen[:-1]), seen  # 1.0 only in the last report, if at all


def test_lyrics_train_piped_prints_progress_lines(tmp_path):
    """A tiny run on a corpus of real tokens (the shipped tokenizer over a poem): with stderr a
    pipe, plain step lines every 10 % and the validation lines, not one silent wait."""
    import numpy as np
    from transformers import AutoTokenizer

    from musegen.lyrics.lm import SHIPPED

    corpus = tmp_path / "corpus"
    (corpus / "tokenizer").mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (corpus / "tokenizer" / name).write_bytes((Path(SHIPPED) / name).read_bytes())
    tok = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    verse = "The sea is calm tonight.\nThe tide is full, the moon lies fair\nUpon the straits.\n" * 20
    ids = np.array(tok(verse)["input_ids"], dtype=np.uint16)
    np.save(corpus / "train.npy", ids)
    np.save(corpus / "valid.npy", ids[::-1].copy())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "musegen", "lyrics-train", "--corpus", str(corpus),
                          "--run-dir", str(tmp_path / "run"), "--steps", "20", "--batch-size", "2",
                          "--context", "16", "--d-model", "16", "--layers", "1", "--heads", "1", "--d-ff", "16",
                          "--eval-every", "10", "--threads", "1"],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    steps = [x for x in lines if re.match(r"lyrics-train: \d+/20 \(\d+ %\) loss \d+\.\d+ valid \S+; elapsed", x)]
    assert len(steps) >= 5 and steps[-1].endswith(", done"), lines
    assert sum(x.startswith("step 10: train loss") or x.startswith("step 20: train loss") for x in lines) == 2
    assert "\x1b[" not in res.stderr and (tmp_path / "run" / "final").is_dir()


def test_render_a_take_the_cli_wrote(tiny_model_dir, tmp_path):
    """A take with its sidecar (which continue/regenerate read as a Take) renders as its MIDI."""
    out = tmp_path / "takes"
    assert main(["continue", str(FOLK), "--bars", "1", "--variations", "1", "--model", str(tiny_model_dir),
                 "--device", "cpu", "--threads", "1", "--seed", "1", "--out", str(out)]) == 0
    [take] = sorted(out.glob("*.mid"))
    assert take.with_suffix(".json").is_file()
    assert main(["render", str(take), "--png", str(tmp_path / "roll.png")]) == 0
    assert (tmp_path / "roll.png").stat().st_size > 0
