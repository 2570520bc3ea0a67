"""`OscServer`: a UDP OSC endpoint in front of a Studio and a Session.

Threads:
- the **listener** receives datagrams, decodes them with python-osc's parser, checks them
  (`protocol.parse_request`), answers `status` and `cancel` itself, and enqueues the rest. It never
  generates, loads MIDI or writes a take, so it never blocks on the model.
- the **generation worker** runs continue / regenerate / blend / morph / lyrics / melody one
  at a time.
- the **session worker** runs accept / reject / edit / undo / styles and streamed-clip imports,
  so deciding on a take never waits for the next generation.

python-osc's own `Dispatcher`/server drops packets it can't parse without a word; this loop
reads the socket itself so that every malformed packet is counted and answered.
"""

from __future__ import annotations

import queue
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from bridges.osc.jobs import Executor, Job, Outcome
from bridges.osc.notes import ClipAssembler
from bridges.osc.pacing import Pacer
from bridges.osc.protocol import GENERATE, Limits, ProtocolError, Request, check_id, parse_request, resolve_path
from bridges.studio import StudioLike
from musegen.session import Session

Address = tuple[str, int]
BAD_INPUT = ("bad_packets", "unknown_address", "missing_id", "bad_arguments", "bad_path",
             "queue_full", "duplicate_id")
MAX_DATAGRAM = 65536
LOG_BAD_PER_S = 10
CANCEL_WAIT_S = 5.0  # a running job not stopped this long after a cancel: the cancel says so


class OscServer:
    """Serve OSC requests on `host:port` (port 0 picks a free one; see `.address`)."""

    def __init__(self, studio: StudioLike, session: Session, *, host: str = "127.0.0.1",
                 port: int = 9000, reply_to: Address | None = None, limits: Limits | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.studio = studio
        self.session = session
        self.limits = limits or Limits(allowed_dirs=(session.folder,))
        self.reply_to = reply_to
        self._log = log or (lambda _msg: None)
        self._host, self._port = host, port
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._pacer = Pacer(self.limits.send_rate, self.limits.send_burst)
        self._state = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._gen_q: queue.Queue[Job | None] = queue.Queue(self.limits.max_queue)
        self._quick_q: queue.Queue[Job | None] = queue.Queue(self.limits.max_queue)
        self._in_flight: dict[tuple[str, int, int | str], Job] = {}  # (client host, port, id)
        self._running: Job | None = None
        self._counts: Counter[str] = Counter()
        self._streams = ClipAssembler(self.limits)
        self._executor = Executor(studio, session, self.limits)
        self._started_s = time.monotonic()
        self._log_window = [0.0, 0, 0]  # listener only: window start, lines logged, suppressed

    # ------------------------------------------------------------------ lifecycle
    @property
    def address(self) -> Address:
        assert self._sock is not None, "start() the server first"
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> OscServer:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:  # room for bursts (a DAW streaming a clip); macOS refuses sizes over its maximum
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        except OSError:
            pass
        sock.bind((self._host, self._port))
        self._sock = sock
        self._started_s = time.monotonic()
        for name, target in (("osc-listener", self._listen), ("osc-generate", self._work_gen),
                             ("osc-session", self._work_quick)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def serve_forever(self) -> None:
        """Start (if needed) and block until `stop()` (or KeyboardInterrupt)."""
        if self._sock is None:
            self.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._stop.is_set() and not self._threads:
            return
        self._stop.set()
        with self._state:
            for job in self._in_flight.values():
                job.cancel.set()
        for q in (self._gen_q, self._quick_q):
            while True:  # make room for the sentinel
                try:
                    q.put_nowait(None)
                    break
                except queue.Full:
                    self._drain_one(q)
        for t in self._threads:
            t.join(timeout=30)
        self._threads.clear()
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> OscServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------- status
    def status(self) -> dict:
        with self._state:
            c = dict(self._counts)
            running = self._running.id if self._running is not None else ""
        bad = {k: c.get(k, 0) for k in BAD_INPUT}
        return {"uptime_s": round(time.monotonic() - self._started_s, 1),
                "packets": c.get("packets", 0), "messages": c.get("messages", 0),
                "served": c.get("served", 0), "failed": c.get("failed", 0),
                "cancelled": c.get("cancelled", 0), "bad_input": sum(bad.values()), **bad,
                "send_errors": c.get("send_errors", 0), "paced_s": round(self._pacer.waited_s, 3),
                "queued": self._gen_q.qsize() + self._quick_q.qsize(), "running": str(running),
                "takes": len(self.session.takes(include_undone=True)),
                "max_bars": self.limits.max_bars, "max_variations": self.limits.max_variations,
                "max_queue": self.limits.max_queue}

    def _count(self, key: str, n: int = 1) -> None:
        with self._state:
            self._counts[key] += n

    def client_of(self, addr: Address) -> Address:
        """Who a request belongs to: where its replies go. That is the sender's own address
        (host and port), so two clients on one machine never share ids, streams or cancels;
        with `reply_to` (`--reply-port`) every reply goes to one address, so every sender is
        that one client (tools like oscsend send each message from a new port)."""
        return self.reply_to or addr

    # ------------------------------------------------------------------ sending
    def _send(self, addr: Address, address: str, args: list) -> None:
        """Send one reply; never raises (a reply that can't be sent is counted)."""
        try:
            b = OscMessageBuilder(address)
            for a in args:
                b.add_arg(a)
            data = b.build().dgram
            with self._send_lock:
                self._pacer.wait()
                self._sock.sendto(data, self.reply_to or addr)  # type: ignore[union-attr]
        except Exception:  # BuildError for an unencodable value, OSError for a gone client
            self._count("send_errors")

    def _error(self, addr: Address, rid: int | str, message: str, kind: str) -> None:
        self._count(kind)
        self._send(addr, "/musegen/error", [rid, message])
        self._flush_log(time.monotonic())  # at most LOG_BAD_PER_S lines a second in a flood
        if self._log_window[1] < LOG_BAD_PER_S:
            self._log_window[1] += 1
            self._log(f"error [{kind}] from {addr[0]}:{addr[1]} id={rid!r}: {message}")
        else:
            self._log_window[2] += 1

    def _flush_log(self, now: float) -> None:
        if now - self._log_window[0] >= 1.0:
            if self._log_window[2]:
                self._log(f"... {self._log_window[2]} more bad input(s) not logged (see /musegen/status)")
            self._log_window = [now, 0, 0]

    # ----------------------------------------------------------------- listener
    def _listen(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.2)
                self._expire_cancels(time.monotonic())
                if not ready:
                    self._flush_log(time.monotonic())
                    continue
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                self.handle_datagram(data, addr[:2])
            except Exception as e:  # never let one packet stop the listener
                self._error(addr[:2], "", f"internal error: {type(e).__name__}: {e}", "bad_packets")

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        """Decode one datagram (a message or a bundle) and handle each message in it."""
        self._count("packets")
        try:
            check_type_tags(data)
            messages = [m.message for m in OscPacket(data).messages]
        except Exception as e:  # python-osc raises ParseError, but also IndexError & co.
            self._error(addr, "", f"malformed OSC packet ({len(data)} bytes): {e}", "bad_packets")
            return
        for msg in messages:
            self._count("messages")
            self._handle_message(msg.address, list(msg.params), addr)

    def _handle_message(self, address: str, args: list, addr: Address) -> None:
        try:
            req = parse_request(address, args, self.limits)
            if "path" in req.params:
                req.params["path"] = resolve_path(req.params["path"], self.limits)
        except ProtocolError as e:
            self._error(addr, _guess_id(args), str(e), e.kind)
            return
        if req.op == "status":
            flat: list = [req.id]
            for k, v in self.status().items():
                flat += [k, v]
            self._send(addr, "/musegen/status", flat)
            return
        if req.op == "cancel":
            self._cancel(req, addr)
            return
        key = (self.client_of(addr), req.id)
        try:
            if req.op == "clip/begin":
                self._streams.begin(key, req.params)
                self._send(addr, "/musegen/ack", [req.id])
                return
            if req.op == "note":
                self._streams.add(key, req.params)
                return
            clip = self._streams.end(key) if req.op == "clip/end" else None
        except ProtocolError as e:
            self._error(addr, req.id, str(e), e.kind)
            return
        self._enqueue(req, addr, clip)

    def _enqueue(self, req: Request, addr: Address, clip: object) -> None:
        flight_key = (*self.client_of(addr), req.id)
        job = Job(req, send=lambda a, args: self._send(addr, a, args), client=f"{addr[0]}:{addr[1]}",
                  clip=clip, key=flight_key)  # type: ignore[arg-type]
        q = self._gen_q if req.op in GENERATE else self._quick_q
        with self._state:
            if flight_key in self._in_flight:
                dup = True
            else:
                dup = False
                try:
                    q.put_nowait(job)
                    self._in_flight[flight_key] = job
                except queue.Full:
                    job = None  # type: ignore[assignment]
        if dup:
            self._error(addr, req.id, f"request id {req.id!r} is already in flight; "
                                      f"use a new id for each request", "duplicate_id")
        elif job is None:
            self._error(addr, req.id, f"queue full ({self.limits.max_queue} requests waiting); "
                                      f"try again when some are done", "queue_full")
        else:
            self._send(addr, "/musegen/ack", [req.id])

    def _cancel(self, req: Request, addr: Address) -> None:
        """Cancel the same client's request R. `done` only once R is known to be stopped: at
        once when it is still queued (no worker will start it), else when it ends cancelled.
        A job that ends otherwise, or runs on CANCEL_WAIT_S after the cancel, gets an error."""
        target = req.params["request"]
        client = self.client_of(addr)
        with self._state:
            job = self._in_flight.get((*client, target))
            if job is not None:
                job.cancel.set()
                if job.started:  # answered when it ends (the worker) or times out (listener)
                    job.cancel_replies.append((req.id, addr, time.monotonic() + CANCEL_WAIT_S))
                    return
        if job is None:
            self._error(addr, req.id, f"no request {target!r} from {client[0]}:{client[1]} is "
                                      f"queued or running", "bad_arguments")
            return
        self._send(addr, "/musegen/done", [req.id, target])

    def _expire_cancels(self, now: float) -> None:
        """Answer the cancels whose running job has not stopped in time (listener only)."""
        late = []
        with self._state:
            for job in self._in_flight.values():
                if job.cancel_replies and job.cancel_replies[0][2] <= now:
                    late += [(job, c) for c in job.cancel_replies if c[2] <= now]
                    job.cancel_replies = [c for c in job.cancel_replies if c[2] > now]
        for job, (cid, addr, _) in late:
            self._send(addr, "/musegen/error",
                       [cid, f"request {job.id!r} has not stopped {CANCEL_WAIT_S:g} s after the "
                             f"cancel: it is still running (its own reply will say how it ended)"])

    def _answer_cancels(self, job: Job, outcome: Outcome, replies: list) -> None:
        for cid, addr, _ in replies:
            if outcome.kind == "cancelled":
                self._send(addr, "/musegen/done", [cid, job.id])
            else:
                how = "finished" if outcome.kind == "served" else f"failed ({outcome.args[1]})"
                self._send(addr, "/musegen/error", [cid, f"request {job.id!r} was not stopped: "
                                                         f"it {how} before the cancel took effect"])

    # ------------------------------------------------------------------ workers
    def _work_gen(self) -> None:
        warm = getattr(self.studio, "warm", None)  # off the listener: status is answered meanwhile
        if warm is not None:
            try:
                warm()
            except Exception as e:  # the first request will say what is wrong
                self._log(f"warm-up failed: {type(e).__name__}: {e}")
        self._work(self._gen_q, track_running=True)

    def _work_quick(self) -> None:
        self._work(self._quick_q, track_running=False)

    def _work(self, q: queue.Queue, track_running: bool) -> None:
        while True:
            job = q.get()
            if job is None:
                return
            with self._state:  # a cancel sees either a queued job (never started) or a running one
                job.started = not job.cancel.is_set()
                if track_running and job.started:
                    self._running = job
            if not job.started:
                outcome = Outcome("cancelled", "/musegen/error", [job.id, "cancelled before it started"])
            else:
                outcome = self._executor.run(job)
            with self._state:  # count first, so a status asked after the reply includes it
                self._counts[outcome.kind] += 1
                if track_running:
                    self._running = None
                self._in_flight.pop(job.key, None)
                replies, job.cancel_replies = job.cancel_replies, []
            job.send(outcome.address, outcome.args)
            self._answer_cancels(job, outcome, replies)
            self._log(f"{job.request.op} id={job.id!r} from {job.client}: {outcome.kind}"
                      + (f": {outcome.args[1]}" if outcome.kind != "served" else ""))

    def _drain_one(self, q: queue.Queue) -> None:
        try:
            job = q.get_nowait()
        except queue.Empty:
            return
        if job is not None:
            job.send("/musegen/error", [job.id, "server shutting down"])


SUPPORTED_TAGS = frozenset("ihfdsbrmtTFN[]")


def check_type_tags(data: bytes, depth: int = 0) -> None:
    """Refuse type tags python-osc would skip without a word (liblo's 'S' and 'c', typos), in a
    message or anywhere inside a bundle, before python-osc parses the packet."""
    if data.startswith(b"#bundle\x00"):
        if depth > 8:
            raise ValueError("bundles nested more than 8 deep")
        pos = 16
        while pos + 4 <= len(data):
            size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
            if size <= 0 or pos + 4 + size > len(data):
                raise ValueError(f"bundle element of {size} bytes does not fit the packet")
            check_type_tags(data[pos + 4:pos + 4 + size], depth + 1)
            pos += 4 + size
        return
    end = data.find(b"\x00")
    if end < 0:
        return  # python-osc will refuse it
    start = (end // 4 + 1) * 4
    if start >= len(data) or data[start:start + 1] != b",":
        return
    stop = data.find(b"\x00", start)
    tags = data[start + 1:stop if stop >= 0 else len(data)].decode("ascii", "replace")
    bad = sorted(set(tags) - SUPPORTED_TAGS)
    if bad:
        raise ValueError(f"unsupported OSC type tag(s) {''.join(bad)!r} in ',{tags}'")


def _guess_id(args: list) -> int | str:
    if not args:
        return ""
    try:
        return check_id(args[0])
    except ProtocolError:
        return ""


def default_limits(session_folder: Path, allow: list[Path] | None = None, **kw: int) -> Limits:
    """Limits with the session folder (and any `--allow` folders) as the allowed paths."""
    dirs = tuple(Path(p).expanduser().resolve() for p in [*(allow or []), session_folder])
    return Limits(allowed_dirs=dirs, **kw)
