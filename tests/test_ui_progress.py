"""bridges/commands/_ui.progress: a bar in a terminal, plain periodic lines otherwise."""

import io
import re
import time

from rich.console import Console

from bridges.commands._ui import progress


def test_plain_lines_when_not_a_terminal():
    buf = io.StringIO()
    with progress(Console(file=buf, width=200), "[bold]train", total=20, every_s=60) as bar:
        for step in range(1, 21):
            bar.update(step, info=f"loss {3 - step / 10:.3f}")
        bar.print("step 20: valid NLL 1.5")
    out = buf.getvalue()
    assert "\x1b[" not in out and "━" not in out  # no escape codes, no bar
    lines = out.splitlines()
    assert lines[0] == "train: 1/20 (5 %) loss 2.900; elapsed 0:00:00"
    assert any(re.fullmatch(r"train: 10/20 \(50 %\) loss 2\.000; elapsed \d:\d\d:\d\d, ETA \d:\d\d:\d\d", x)
               for x in lines)
    assert lines[-2].startswith("train: 20/20 (100 %) loss 1.000; elapsed") and lines[-2].endswith("done")
    assert lines[-1] == "step 20: valid NLL 1.5"
    assert 5 <= len(lines) <= 13  # every 10 %, not every step


def test_a_line_every_few_seconds_even_without_updates():
    buf = io.StringIO()
    with progress(Console(file=buf, width=200), "eval", every_s=0.1) as bar:
        bar.update(info="likelihood")
        time.sleep(0.55)
        bar.update(info="style fidelity")
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("eval: likelihood; elapsed")
    assert sum(x.startswith("eval: likelihood") for x in lines) >= 3  # the heartbeat
    assert lines[-1].startswith("eval: style fidelity; elapsed")


def test_a_bar_in_a_terminal():
    buf = io.StringIO()
    with progress(Console(file=buf, width=120, force_terminal=True), "[bold]train", total=5) as bar:
        for step in range(1, 6):
            bar.update(step, info="loss 0.5")
    out = buf.getvalue()
    assert "━" in out and "5/5" in out and "train: " not in out


def test_the_final_count_is_printed_once_however_often_it_is_reported():
    import io

    from rich.console import Console

    from bridges.commands._ui import progress

    buf = io.StringIO()
    with progress(Console(file=buf, force_terminal=False, width=200), "job", total=4) as bar:
        for done in (1, 2, 3, 4, 4, 4, 4):
            bar.update(done)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("job: 4/4")]
    assert len(lines) == 1, buf.getvalue()
