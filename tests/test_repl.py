"""`musegen repl`: a real subprocess fed commands on stdin, against the tiny model."""

import re
import subprocess
import sys
from pathlib import Path

from musegen import Clip
from musegen.session import Session

ROOT = Path(__file__).parents[1]

COMMANDS = """\
sorted(styles)
takes = studio.continue_(None, bars=2, variations=2, style="alpha", seed=3)
takes
kept = keep(takes)
session.accept(kept[0].id)
session.takes()
more = studio.continue_(clip(kept[0].id), bars=1, variations=1, seed=4)
keep(more, parent=kept[0].id)
print("last:", more[0])
"""

TAKE_LINE = re.compile(r"<Take continue (\d+) bars \(1-\d+\) (\d+) notes style=alpha seed=\d+ "
                       r"novelty=\S.* id=[0-9a-f]{12}>")
RECORD_LINE = re.compile(r"<(t\d{4}) continue (pending|accepted) (\d+) bars (\d+) notes "
                         r"style=\S+ novelty=\S.*>")


def test_repl_session_from_stdin(tmp_path, tiny_model_dir):
    folder = tmp_path / "song"
    out = subprocess.run([sys.executable, "-m", "bridges.cli", "repl", "--model", str(tiny_model_dir),
                          "--session", str(folder), "--device", "cpu"],
                         input=COMMANDS, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "musegen" in out.stderr and "REPL" in out.stderr and str(folder) in out.stderr  # banner
    assert "Traceback" not in out.stderr, out.stderr
    assert "['alpha', 'beta', 'gamma']" in out.stdout
    takes = TAKE_LINE.findall(out.stdout)
    assert len(takes) == 2 and all(bars == "2" for bars, _ in takes), out.stdout
    records = RECORD_LINE.findall(out.stdout)
    # the accept's record, the two in session.takes(), the kept continuation
    assert [r[1] for r in records[:3]] == ["accepted", "accepted", "pending"], out.stdout
    assert "last: <Take continue 1 bars (1-1)" in out.stdout
    with Session.open(folder, readonly=True) as s:  # the shell closed the session cleanly
        listed = s.takes()
        assert [t.id for t in listed] == ["t0001", "t0002", "t0003"]
        assert listed[0].status == "accepted" and listed[2].parent == "t0001"
        for t in listed:
            assert Clip.load(t.midi_path).n_bars == t.n_bars
        assert [(r[0], int(r[2]), int(r[3])) for r in records[1:3]] == \
               [(t.id, t.n_bars, t.n_notes) for t in listed[:2]]


def test_repl_refuses_a_session_held_elsewhere(tmp_path, tiny_model_dir):
    folder = tmp_path / "held"
    with Session.open(folder):
        out = subprocess.run([sys.executable, "-m", "bridges.cli", "repl", "--model", str(tiny_model_dir),
                              "--session", str(folder), "--device", "cpu"],
                             input="", cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and "open in another process" in out.stderr
        ro = subprocess.run([sys.executable, "-m", "bridges.cli", "repl", "--model", str(tiny_model_dir),
                             "--session", str(folder), "--device", "cpu", "--readonly"],
                            input="len(session.takes())\n", cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
        assert ro.returncode == 0 and "read-only" in ro.stderr and "0" in ro.stdout
