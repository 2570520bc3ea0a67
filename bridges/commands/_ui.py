"""Terminal pieces shared by the sub-commands (the library itself never draws anything).

Every command that can run for more than a couple of seconds reports through `progress`:

    with progress(console, "train", total=steps) as bar:
        for step in ...:
            bar.update(step, info=f"loss {loss:.3f}")
        bar.print("step 500: valid NLL 1.23")   # a line above the bar, or a plain line

In a terminal this draws a rich bar (done/total, elapsed, ETA). When the output is not a
terminal (a pipe, a log file, CI) it writes plain lines instead: the first update, every 10 %
of the total, a stage change (an update with no count and a new `info`), at least one line
every `every_s` seconds while the job runs (even if no update came), and the final state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def progress_bar(console: Console, label: str, *extra: ProgressColumn) -> Progress:
    """A bar with done/total, elapsed time and ETA; `extra` columns go before the times."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *extra,
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, refresh_per_second=2)


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds) + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Reporter:
    """What `progress` yields: `update(done, total=None, info="")` and `print(message)`."""

    def __init__(self, console: Console, label: str, total: int | None, every_s: float) -> None:
        self.console = console
        self.label = Text.from_markup(label).plain
        self.total = total
        self.every_s = every_s
        self.done: int | None = None
        self.info = ""
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._first: tuple[float, int] | None = None  # (time, done) of the first count seen
        self._last_line_t = float("-inf")
        self._last_line: tuple | None = None
        self._next_mark = 0  # next 10 % mark (in steps) that earns a line

    # -- the API the commands use
    def update(self, done: int | None = None, total: int | None = None, info: str = "") -> None:
        with self._lock:
            stage_change = done is None and info != self.info
            if total is not None:
                self.total = total
            if done is not None:
                self.done = done
                if self._first is None:
                    self._first = (time.monotonic(), done)
            self.info = info
            self._on_update(stage_change)

    def print(self, message: str) -> None:
        """A line of its own (above the bar in a terminal)."""
        with self._lock:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    # -- plain-line mode (the terminal subclass overrides these)
    def _on_update(self, stage_change: bool) -> None:
        first = self._last_line is None
        mark = (self.total and self.done is not None and self.done >= self._next_mark)
        done_now = self.total and self.done == self.total and self._last_line != self._state()
        if first or stage_change or mark or done_now:  # "done" once, however often it is repeated
            self._line()

    def _state(self) -> tuple:
        return (self.done, self.total, self.info)

    def line(self) -> str:
        """The plain line for the current state: label, done/total (%), info, elapsed, ETA."""
        now = time.monotonic()
        parts = [f"{self.label}:"]
        if self.done is not None:
            if self.total:
                parts.append(f"{self.done}/{self.total} ({100 * self.done / self.total:.0f} %)")
            else:
                parts.append(str(self.done))
        if self.info:
            parts.append(self.info)
        tail = f"elapsed {_clock(now - self._t0)}"
        if self.total and self.done is not None and self._first is not None:
            t1, d1 = self._first
            if self.done >= self.total:
                tail += ", done"
            elif self.done > d1:
                eta = (now - t1) / (self.done - d1) * (self.total - self.done)
                tail += f", ETA {_clock(eta)}"
        return " ".join(parts) + ("; " if len(parts) > 1 else " ") + tail

    def _line(self) -> None:
        self.console.print(self.line(), markup=False, highlight=False, soft_wrap=True)
        self._last_line_t = time.monotonic()
        self._last_line = self._state()
        if self.total and self.done is not None:
            step = max(1, -(-self.total // 10))
            self._next_mark = (self.done // step + 1) * step

    def _heartbeat(self) -> None:
        with self._lock:
            if time.monotonic() - self._last_line_t >= self.every_s * 0.99:
                self._line()

    def _close(self, ok: bool) -> None:
        with self._lock:
            if ok and self._last_line != self._state() and (self.done is not None or self.info):
                self._line()


class _BarReporter(Reporter):
    def __init__(self, console: Console, label: str, total: int | None, every_s: float) -> None:
        super().__init__(console, label, total, every_s)
        self.bar = progress_bar(console, label, TextColumn("{task.fields[info]}"))
        self.task = self.bar.add_task(self.label, total=total, info="")

    def _on_update(self, stage_change: bool) -> None:
        self.bar.update(self.task, total=self.total, completed=self.done or 0, info=self.info)

    def print(self, message: str) -> None:
        self.bar.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def _close(self, ok: bool) -> None:
        pass


@contextmanager
def progress(console: Console, label: str, total: int | None = None, *,
             every_s: float = 10.0) -> Iterator[Reporter]:
    """Progress for one long job: a rich bar in a terminal, plain lines otherwise.

    `total` may be None (unknown yet: pass it later to `update`, or report stages by
    `update(info="stage name")`). Plain lines come at least every `every_s` seconds.
    """
    if console.is_terminal and not console.is_dumb_terminal:
        rep: Reporter = _BarReporter(console, label, total, every_s)
        with rep.bar:
            yield rep
        return
    rep = Reporter(console, label, total, every_s)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            rep._heartbeat()

    thread = threading.Thread(target=beat, name=f"progress {rep.label}", daemon=True)
    thread.start()
    ok = False
    try:
        yield rep
        ok = True
    finally:
        stop.set()
        thread.join()
        rep._close(ok)
