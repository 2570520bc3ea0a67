"""Every command and snippet in README.md runs as written, from the clone's top folder.

The test works in a scratch folder that holds the clone's `musegen/` package (a symlink), so a
README path such as `musegen/data/examples/folk.mid` resolves as it does in a fresh clone, and
what the examples write (takes/, styles.png, take1.mid, musegen-session/) lands there.

- ```bash blocks, line by line, split into words as bash does (shlex):
  - `musegen ...` / `python -m musegen ...` run through `bridges.cli.main` (in-process, so the
    default run stays fast) and must exit 0; `python -m MODULE` runs as a process;
  - NOT run, but checked: the long jobs (lyrics-corpus, lyrics-train, corpus, train, eval,
    eval-nll, model-card: minutes to hours, some need the network) must parse with musegen's own
    parser; `bash scripts/X.sh` (installs everything) must exist and pass `bash -n`;
    `pip install -e ".[EXTRA]"` must name an extra of pyproject.toml.
  Any other line fails the test, so a new kind of README command gets a check here.
- ```python blocks without `>>>` are executed in order in one namespace (a reader's session).
- the REPL block: its `>>>` lines are fed to `musegen repl` on stdin, and the output the README
  shows must be what the shell prints (`...` in the README stands for anything).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bridges.cli import build_parser, main

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
# commands that train or measure for minutes to hours: checked by a dry parse only
LONG = {"lyrics-corpus", "lyrics-train", "corpus", "train", "eval", "eval-nll", "model-card"}


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


def commands(block: str) -> list[list[str]]:
    """The block's commands as bash would split them (comments dropped, `\\` continues a line)."""
    text = block.replace("\\\n", " ")
    return [w for w in (shlex.split(line, comments=True) for line in text.splitlines()) if w]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A folder that looks like the top of a fresh clone to the README's commands."""
    top = tmp_path_factory.mktemp("clone")
    (top / "musegen").symlink_to(ROOT / "musegen", target_is_directory=True)
    return top


def pyproject_extras() -> set[str]:
    tomllib = pytest.importorskip("tomllib")
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def check(words: list[str], capsys) -> str:
    """Run or check one README command; returns what it did (for the failure message)."""
    if words[0] in ("python", "python3") and words[1:3] == ["-m", "musegen"]:
        words = ["musegen", *words[3:]]
    if words[0] == "musegen":
        argv = words[1:]
        if argv and argv[0] in LONG:
            build_parser().parse_args(argv)  # exits (SystemExit) on an unknown option
            return "parsed"
        rc = main(argv)
        assert rc == 0, f"{shlex.join(words)} -> exit {rc}: {capsys.readouterr().err}"
        return "ran"
    if words[0] in ("python", "python3") and words[1] == "-m":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        res = subprocess.run([sys.executable, *words[1:]], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, f"{shlex.join(words)}: {res.stderr}"
        return res.stdout
    if words[0] == "bash" and words[1].startswith("scripts/"):
        script = ROOT / words[1]
        assert script.is_file(), f"README runs {words[1]}, which does not exist"
        subprocess.run(["bash", "-n", str(script)], check=True)
        return "bash -n"
    if words[:3] == ["pip", "install", "-e"]:
        m = re.fullmatch(r"\.\[([\w,-]+)\]", words[3])
        assert m, f"unexpected pip line {shlex.join(words)}"
        missing = set(m[1].split(",")) - pyproject_extras()
        assert not missing, f"README installs extras {missing} that pyproject.toml lacks"
        return "extras exist"
    raise AssertionError(f"README command {shlex.join(words)!r}: the test does not know how to check it")


def test_the_readme_has_its_examples():
    assert len(blocks("bash")) >= 4 and len(blocks("python")) >= 3
    text = README.read_text(encoding="utf-8")
    assert "tune.mid" not in text  # the old example that no clone has
    assert "musegen/data/examples/folk.mid" in text and "musegen/data/examples/chorale.mid" in text


@pytest.mark.parametrize("n", range(len(blocks("bash"))), ids=lambda n: f"bash-{n + 1}")
def test_bash_block_runs(n, clone, monkeypatch, capsys):
    monkeypatch.chdir(clone)
    for words in commands(blocks("bash")[n]):
        out = check(words, capsys)
        if words[:3] == ["python", "-m", "musegen.examples"]:
            paths = [Path(p) for p in out.split()]
            assert {p.name for p in paths} == {"folk.mid", "chorale.mid"} and all(p.is_file() for p in paths)
    if any(w[:2] == ["musegen", "continue"] for w in commands(blocks("bash")[n])):
        assert len(list((clone / "takes").glob("folk-continue-*.mid"))) >= 4
        assert (clone / "folk-continue-1.png").stat().st_size > 0  # the render line
        assert (clone / "styles.png").stat().st_size > 0


def test_python_blocks_run_in_order(clone, monkeypatch):
    monkeypatch.chdir(clone)
    scope: dict = {"__name__": "__readme__"}
    snippets = [b for b in blocks("python") if not b.lstrip().startswith(">>>")]
    assert len(snippets) >= 2
    for code in snippets:
        exec(compile(code, str(README), "exec"), scope)  # the README's own code
    assert len(scope["takes"]) == 4 and all(t.clip.n_bars == 8 for t in scope["takes"])
    assert (clone / "take1.mid").is_file() and (clone / "take1.json").is_file()
    assert (clone / "styles.png").is_file()
    assert len(scope["words"]) == 4 and all(t.clip.lyrics for t in scope["words"])
    assert scope["tunes"] and all(t.clip.lyrics for t in scope["tunes"])


def test_repl_block_prints_what_the_readme_shows(clone):
    [block] = [b for b in blocks("python") if b.lstrip().startswith(">>>")]
    lines = block.splitlines()
    stdin = "".join(line[4:] + "\n" for line in lines if line.startswith(">>> "))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "bridges.cli", "repl"], input=stdin, cwd=clone, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    printed = [x.removeprefix(">>> ").strip() for x in res.stdout.replace(">>> ", ">>> \n").splitlines()]
    printed = [x for x in printed if x]
    shown = [line.strip() for line in lines if line.strip() and not line.startswith(">>> ")]
    assert shown, "the REPL block shows some output"
    for want in shown:
        pattern = ".*".join(re.escape(part) for part in want.split("..."))
        assert any(re.fullmatch(pattern, got) for got in printed), (want, res.stdout)
    assert (clone / "musegen-session").is_dir()
