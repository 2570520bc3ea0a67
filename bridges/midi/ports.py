"""The two things a live MIDI bridge needs from a port, an in-memory double, and real ports.

    input:  iter_pending() -> the mido messages received since the last call
    output: send(message)

mido's ports already look like this, so real ports are plain mido ports (opened through
python-rtmidi); `MemoryInput` / `MemoryOutput` stand in for them in tests, with no hardware,
no ALSA and no JACK. Real ports are only opened by `open_ports`, lazily importing the backend.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

import mido

from musegen.errors import MusegenError

APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE",
        "winmm": "WINDOWS_MM"}


class MidiPortError(MusegenError, OSError):
    """No MIDI port could be opened; the message says what was tried and how to fix it."""


class InputPort(Protocol):
    def iter_pending(self) -> Iterator[mido.Message]: ...

    def close(self) -> None: ...


class OutputPort(Protocol):
    def send(self, msg: mido.Message) -> None: ...

    def close(self) -> None: ...


class MemoryInput:
    """An input port fed by the test: `feed(msg)`, then the bridge reads it."""

    name = "memory in"

    def __init__(self) -> None:
        self._pending: deque[mido.Message] = deque()
        self.closed = False

    def feed(self, *msgs: mido.Message) -> None:
        self._pending.extend(msgs)

    def iter_pending(self) -> Iterator[mido.Message]:
        while self._pending:
            yield self._pending.popleft()

    def close(self) -> None:
        self.closed = True


class MemoryOutput:
    """An output port that records `(time, message)` for every message sent."""

    name = "memory out"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.sent: list[tuple[float, mido.Message]] = []
        self.closed = False

    def send(self, msg: mido.Message) -> None:
        self.sent.append((self.clock(), msg))

    def close(self) -> None:
        self.closed = True


def _order(api: str) -> list[str]:
    if api != "auto":
        return [api]
    if sys.platform == "darwin":
        return ["coremidi", "jack"]
    if sys.platform.startswith("win"):
        return ["winmm"]
    return ["alsa", "jack"]


def _backend(api: str) -> mido.Backend:
    if api not in APIS:
        raise MidiPortError(f"unknown MIDI API {api!r}; choose auto, {', '.join(APIS)}")
    try:
        import rtmidi  # noqa: F401  (mido's backend imports it lazily; fail here with the fix)
    except ImportError:
        raise MidiPortError("live MIDI needs python-rtmidi, which is not installed: "
                            "run `python3 -m pip install python-rtmidi`") from None
    return mido.Backend(f"mido.backends.rtmidi/{APIS[api]}", load=True)


def open_ports(name: str = "musegen", *, api: str = "auto", in_port: str | None = None,
               out_port: str | None = None) -> tuple[object, object, str]:
    """Open `<name> in` and `<name> out` as virtual ports (or the named existing ports).

    `api='auto'` tries ALSA, then JACK (containers and many studio set-ups have no ALSA
    sequencer but run a JACK server); returns (input, output, the API that worked).
    """
    tried = []
    for a in _order(api):
        try:
            be = _backend(a)
            inp = (be.open_input(in_port) if in_port else
                   be.open_input(f"{name} in", virtual=True))
            try:
                out = (be.open_output(out_port) if out_port else
                       be.open_output(f"{name} out", virtual=True))
            except BaseException:
                inp.close()
                raise
            return inp, out, a
        except (OSError, SystemError, RuntimeError, ImportError, ValueError) as e:
            tried.append(f"{a}: {e}")
    raise MidiPortError("could not open MIDI ports (" + "; ".join(tried) + "). On Linux without "
                        "ALSA start a JACK server first (see docs/midi.md); on Windows, create a "
                        "loopMIDI port and pass --in-port/--out-port")


def list_ports(api: str = "auto") -> dict[str, list[str]]:
    """Existing input and output port names for `api` (empty lists where it can't connect)."""
    for a in _order(api):
        try:
            be = _backend(a)
            return {"api": [a], "inputs": be.get_input_names(), "outputs": be.get_output_names()}
        except (OSError, SystemError, RuntimeError, ImportError, ValueError):
            continue
    return {"api": [], "inputs": [], "outputs": []}
