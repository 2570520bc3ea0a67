"""`OscClient`: the client side of `musegen serve`'s protocol (docs/osc.md), for host scripts
that cannot open a socket themselves (REAPER's stock Lua): stream a clip in, send a request,
collect its replies until `done` or `error`.

One UDP socket both sends and receives, so the server's replies (sent to the sender) come back
to it; bind it to a fixed port with `local_port` when the server runs with `--reply-port`.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from bridges.osc.protocol import PREFIX

Message = tuple[str, list]


class OscRequestError(RuntimeError):
    """The server answered /musegen/error, or nothing came back in time."""


@dataclass
class Reply:
    """Everything the server sent back for one request id, in order, ending with done/error."""

    rid: int | str
    messages: list[Message] = field(default_factory=list)

    def of(self, address: str) -> list[list]:
        return [args for a, args in self.messages if a == PREFIX + address]

    @property
    def done(self) -> list:
        [args] = self.of("/done")
        return args


def encode(address: str, args: Sequence[object]) -> bytes:
    """One OSC message: ints as `i` (or `h` past 32 bits), floats as `f`, strings as `s`."""
    b = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, bool) or not isinstance(a, (int, float, str)):
            raise TypeError(f"OSC argument must be an int, float or string, got {a!r}")
        if isinstance(a, int):
            b.add_arg(a, "i" if -2**31 <= a < 2**31 else "h")
        else:
            b.add_arg(a, "f" if isinstance(a, float) else "s")
    return b.build().dgram


class OscClient:
    """Talk to `musegen serve` at `host:port` from one UDP socket."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, *, local_port: int = 0,
                 timeout_s: float = 300.0) -> None:
        self.server = (host, port)
        self.timeout_s = timeout_s
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("", local_port))
        # ids unique across runs of short-lived clients (one per REAPER action): pid + clock
        self._ids = itertools.count(1)
        self._stem = f"c{os.getpid()}-{int(time.time() * 1000) % 10**9}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> OscClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_id(self) -> str:
        return f"{self._stem}-{next(self._ids)}"

    def send(self, address: str, args: Sequence[object]) -> None:
        self._sock.sendto(encode(address, args), self.server)

    def request(self, op: str, params: Iterable[object] = (), rid: str | None = None) -> Reply:
        """Send `/musegen/<op> id params...` and wait for its `done` (OscRequestError on `error`)."""
        rid = rid or self.new_id()
        self.send(f"{PREFIX}/{op}", [rid, *params])
        return self.wait(rid)

    def stream_clip(self, notes: Sequence[dict], *, tempo: float, time_signature: str,
                    name: str = "daw") -> str:
        """Stream a clip in (clip/begin, note..., clip/end); the take id the server stored it as."""
        rid = self.new_id()
        self.send(f"{PREFIX}/clip/begin", [rid, "name", name, "tempo", float(tempo),
                                           "time_signature", time_signature])
        for n in notes:
            self.send(f"{PREFIX}/note", [rid, int(n["pitch"]), int(n["velocity"]), float(n["start_beats"]),
                                         float(n["duration_beats"]), int(n.get("track", 0))])
            time.sleep(0)  # let the listener drain: loopback UDP drops bursts beyond its buffer
        self.send(f"{PREFIX}/clip/end", [rid])
        return str(self.wait(rid).done[1])

    def wait(self, rid: int | str) -> Reply:
        reply = Reply(rid)
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OscRequestError(f"no answer from musegen serve at {self.server[0]}:{self.server[1]} "
                                      f"within {self.timeout_s:g} s (is it running?)")
            self._sock.settimeout(left)
            try:
                data, _ = self._sock.recvfrom(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:  # Windows: the port was closed (no server there)
                raise OscRequestError(f"no musegen serve at {self.server[0]}:{self.server[1]}") from None
            try:
                msg = OscMessage(data)
            except Exception:  # not OSC: not from musegen serve
                continue
            args = list(msg.params)
            if not args or args[0] != rid:
                continue  # another request's reply (or a stray one)
            reply.messages.append((msg.address, args))
            if msg.address == f"{PREFIX}/error":
                raise OscRequestError(str(args[1]) if len(args) > 1 else "error")
            if msg.address == f"{PREFIX}/done":
                return reply
