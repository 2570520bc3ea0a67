"""What the worker threads do with a queued request: run it against the studio and the session,
then reply. Runs off the receive thread; every failure becomes one `/musegen/error`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from bridges.osc.notes import clip_messages
from bridges.osc.protocol import DEFAULTS, GENERATE, LYRIC_OPS, Limits, ProtocolError, Request, to_keywords
from bridges.studio import StudioLike
from musegen.clip import Clip, read_regular_file
from musegen.errors import MusegenError, ParameterError
from musegen.params import default, params_for
from musegen.session import Session, TakeRecord
from musegen.take import Take

if TYPE_CHECKING:  # musegen.generate pulls in torch; the protocol modules load without it
    from musegen.generate.run import TakeNotes

Send = Callable[[str, list], None]
PROGRESS_EVERY_S = 0.1
LIVE = 2  # `stream 2`: notes as they are decoded; `stream 1`: each take after it is saved
LIVE_OPS = frozenset({"continue", "blend", "morph", "regenerate"})  # Studio methods with on_bars


@dataclass
class Job:
    request: Request
    send: Send  # replies to this job's client
    client: str  # "host:port" of the sender, for the journal
    clip: Clip | None = None  # a clip streamed in with clip/begin, note, clip/end
    key: tuple = ()  # (client host, client port, id): the server's in-flight key
    cancel: threading.Event = field(default_factory=threading.Event)
    started: bool = False  # a worker took it (set under the server's lock)
    # cancels waiting for this running job to end: (cancel id, its sender, answer-by time)
    cancel_replies: list[tuple[int | str, tuple, float]] = field(default_factory=list)

    @property
    def id(self) -> int | str:
        return self.request.id


@dataclass(frozen=True)
class Outcome:
    """How a job ended: `kind` (served, failed, cancelled) for the status counters, and the
    final reply (done or error), which the worker sends after it has counted the job."""

    kind: str
    address: str
    args: list


class Executor:
    """Runs jobs. Intermediate replies (progress, take, note...) go out as they happen; the final
    one comes back in the `Outcome`."""

    def __init__(self, studio: StudioLike, session: Session, limits: Limits) -> None:
        self.studio = studio
        self.session = session
        self.limits = limits
        self._imports = threading.Lock()
        self._digests: dict[str, str] = {}  # import take id -> sha256 of its MIDI file
        self._background: threading.Thread | None = None  # a parse a cancel walked away from

    def run(self, job: Job) -> Outcome:
        rid, op = job.id, job.request.op
        logged = False
        try:
            if op in GENERATE:
                logged = True
                done = self._generate(job)
            elif op in ("accept", "reject"):
                decide = self.session.accept if op == "accept" else self.session.reject
                rec = decide(job.request.params["take"], request_id=str(rid))
                done = [rec.id, str(rec.midi_path)]
            elif op == "edit":
                p = job.request.params
                rec = self.session.edit(p["take"], p["path"], request_id=str(rid))
                done = [rec.id, str(rec.midi_path)]
            elif op == "undo":
                entry, rec = self.session.undo(request_id=str(rid))
                state = "hidden" if rec.undone else rec.status
                job.send("/musegen/undone", [rid, entry["type"], rec.id, state])
                done = [rec.id, str(rec.midi_path)]
            elif op == "styles":
                styles = list(self.studio.styles)
                for s in styles:
                    job.send("/musegen/style", [rid, s.index, s.name, s.description, s.pieces])
                done = [len(styles)]
            elif op == "clip/end":
                assert job.clip is not None
                rec = self.session.import_clip(job.clip, operation="stream", request_id=str(rid),
                                               source=f"osc:{job.client}")
                done = [rec.id, str(rec.midi_path)]
            else:  # pragma: no cover - the listener only queues the ops above
                raise ProtocolError(f"/musegen/{op} is not queued work")
            return Outcome("served", "/musegen/done", [rid, *done])
        except InterruptedError:
            return self._fail(job, "cancelled while generating", logged, "cancelled")
        except (MusegenError, ValueError, OSError) as e:
            return self._fail(job, str(e), logged, "failed")
        except Exception as e:  # a bug must not stop the server; say what happened
            return self._fail(job, f"internal error: {type(e).__name__}: {e}", logged, "failed")

    def _fail(self, job: Job, message: str, logged: bool, kind: str) -> Outcome:
        if logged:
            try:
                self.session.log_outcome(str(job.id), "cancel" if kind == "cancelled" else "error",
                                         message)
            except (MusegenError, OSError):
                pass
        return Outcome(kind, "/musegen/error", [job.id, message])

    # ---------------------------------------------------------------- generation
    def _generate(self, job: Job) -> list:
        req, rid = job.request, job.id
        p = dict(req.params)
        self.session.log_request(str(rid), req.op, p, client=job.client)
        progress = _throttled(lambda f: job.send("/musegen/progress", [rid, float(f)]))
        progress(0.0)  # started: reading the source and encoding it come before any bar
        parent, clip = self._source(job, p)
        _check(job)
        # the request's table parameters under their Python names; counts the request leaves
        # out get the table's default, lowered to this server's limit (a DAW asks for short takes)
        kw = to_keywords(req.op, p)
        for name, limit in (("bars", self.limits.max_bars), ("variations", self.limits.max_variations)):
            if name in params_for(req.op) and name not in kw and req.op != "regenerate":
                kw[name] = min(cast(int, DEFAULTS.get(name, default(req.op, name))), limit)
        kw["on_progress"] = progress
        kw["cancelled"] = job.cancel.is_set
        live = LiveStream(job) if p.get("stream") == LIVE else None
        if live is not None and req.op in LIVE_OPS:
            kw["on_bars"] = live.send
        st = self.studio
        if req.op == "lyrics":
            takes = st.lyrics_for(clip, **kw)
        elif req.op == "melody":
            self._check_melody_bars(p)
            text = kw.pop("text")
            takes = st.melody_for(text, **kw)
        elif req.op == "continue":
            takes = st.continue_(clip, **kw)
        elif req.op == "regenerate":
            takes = st.regenerate(clip, **kw)
        elif req.op == "blend":
            takes = st.blend(clip, **kw)
        else:
            takes = st.morph(clip, **kw)
        _check(job)  # a cancel that came after the last bar still drops the takes
        records = self.session.add_takes(takes, parent=parent, request_id=str(rid))
        job.send("/musegen/progress", [rid, 1.0])
        for i, rec in enumerate(records):
            job.send("/musegen/take", [rid, i, rec.id, str(rec.midi_path)])
            if req.op in LYRIC_OPS:
                for address, args in lyric_messages(rid, i, takes[i]):
                    job.send(address, args)
            if live is not None:
                live.end(i, takes[i], rec.id)
            elif p.get("stream"):
                self._stream(job, rec)
        return [records[0].id, *[str(r.midi_path) for r in records]]

    def _source(self, job: Job, p: dict) -> tuple[str | None, Clip | None]:
        """The clip to work from: a session take, or a file (imported as a take first)."""
        if "take" in p:
            take_id = p["take"]
            clip = self._interruptible(job, lambda: self.session.clip(take_id))
            rec = self.session.take(take_id)
            if rec.params and job.request.op in ("continue", "regenerate", "blend", "morph"):
                # building on a take inherits its style and parameters unless the request gives them
                return take_id, Take(clip=clip, operation=rec.operation, params=dict(rec.params),
                                     seed=rec.seed or 0, model_id=rec.model_id or "", parent=rec.parent)
            return take_id, clip
        if "path" in p:
            return self._import(job, Path(p["path"]))
        if job.request.op in ("regenerate", "lyrics"):
            raise ProtocolError(f"{job.request.op} needs a take or a path")
        return None, None

    def _import(self, job: Job, path: Path) -> tuple[str, Clip]:
        """A client's MIDI file as a session take: read once (regular files only, see
        `read_regular_file`), parsed once, and stored once: a file whose bytes an earlier
        import already holds reuses that take instead of storing another copy."""
        data = read_regular_file(path)
        _check(job)
        digest = hashlib.sha256(data).hexdigest()
        clip = self._interruptible(job, lambda: Clip.from_bytes(data, name=path.stem, source=path))
        with self._imports:
            rec = self._find_import(digest, len(data))
            if rec is None:
                rec = self.session.import_clip(clip, data=data, source=str(path),
                                               request_id=str(job.id))
                self._digests[rec.id] = digest
        return rec.id, clip

    def _interruptible(self, job: Job, parse: Callable[[], Clip]) -> Clip:
        """Run `parse` (reading a MIDI file into a Clip: seconds for a million notes, and no
        place to check for a cancel inside) on a helper thread, so that a cancel ends the job
        at once. A parse walked away from that way runs to its end in the background and is
        dropped; only one runs at a time (the next job waits for it, still cancellable)."""
        while self._background is not None and self._background.is_alive():
            self._background.join(0.05)
            _check(job)
        box: dict = {}

        def work() -> None:
            try:
                box["clip"] = parse()
            except BaseException as e:  # handed to the worker, which reports it
                box["error"] = e

        t = threading.Thread(target=work, name="osc-parse", daemon=True)
        t.start()
        while t.is_alive():
            t.join(0.05)
            if job.cancel.is_set():
                self._background = t
                raise InterruptedError("cancelled")
        if "error" in box:
            raise box["error"]
        return box["clip"]

    def _find_import(self, digest: str, size: int) -> TakeRecord | None:
        """The import take whose MIDI file has this content, if any. Take files never change,
        so each is hashed at most once per server (and only when its size matches)."""
        for rec in self.session.takes(include_undone=True):
            if rec.operation != "import":
                continue
            known = self._digests.get(rec.id)
            if known is None:
                try:
                    if rec.midi_path.stat().st_size != size:
                        continue
                    known = hashlib.sha256(read_regular_file(rec.midi_path)).hexdigest()
                except (OSError, MusegenError):
                    continue
                self._digests[rec.id] = known
            if known == digest:
                return rec
        return None

    def _check_melody_bars(self, p: dict) -> None:
        """A melody's length comes from its text: refuse one longer than --max-bars before
        generating (the plan also refuses text without words, or a line too long to sing)."""
        from musegen.lyrics.melody import plan_melody

        bars = plan_melody(p["text"], p.get("time_signature") or (4, 4), p.get("bars_per_line")).bars
        if bars > self.limits.max_bars:
            raise ParameterError(f"the text needs {bars} bars; this server allows at most "
                                 f"{self.limits.max_bars} per request (--max-bars)")

    def _stream(self, job: Job, rec: TakeRecord) -> None:
        clip = self.session.clip(rec.id)
        if clip.n_notes > self.limits.max_notes:
            job.send("/musegen/warning", [job.id, f"take {rec.id} not streamed: {clip.n_notes} "
                                                  f"notes, more than the limit {self.limits.max_notes}"])
            return
        for address, args in clip_messages(job.id, rec.id, clip):
            job.send(address, args)


class LiveStream:
    """`stream 2`: each take's notes as its bars are decoded (`musegen.TakeNotes`), under its
    take index (see docs/osc.md, *Streaming*):

        /musegen/clip/begin id index tempo time_signature   (again for an index: a redrawn take restarts)
        /musegen/note id pitch velocity start_beats duration_beats track index [syllable]
        /musegen/clip/end id index take_id n_notes                  (after the take is saved)

    `send` runs on the generation worker; operations without live bars (lyrics, melody) send
    each take whole at `end`."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.counts: dict[int, int] = {}  # take index -> notes sent

    def send(self, ev: TakeNotes) -> None:
        rid = self.job.id
        if ev.take not in self.counts or ev.restart:
            ts = ev.clip.time_signatures[0]
            self.job.send("/musegen/clip/begin", [rid, ev.take, float(ev.clip.tempos[0].qpm),
                                                  f"{ts.numerator}/{ts.denominator}"])
            self.counts[ev.take] = 0
        for ti, n in ev.notes:
            self.job.send("/musegen/note", [rid, n.pitch, n.velocity, n.start_beats, n.duration_beats, ti,
                                            ev.take, *([n.lyric] if n.lyric else [])])
        self.counts[ev.take] += len(ev.notes)

    def end(self, index: int, take: Take, take_id: str) -> None:
        if index not in self.counts:  # not streamed while decoding: the whole take now
            from musegen.generate.run import TakeNotes

            notes = [(ti, n) for ti, t in enumerate(take.clip.tracks) for n in t.notes]
            notes.sort(key=lambda x: (x[1].start_tick, x[0], x[1].pitch))
            self.send(TakeNotes(index, tuple(notes), take.clip.n_bars, take.clip, final=True))
        self.job.send("/musegen/clip/end", [self.job.id, index, take_id, self.counts[index]])


def lyric_messages(rid: int | str, index: int, take: Take) -> list[tuple[str, list]]:
    """The replies that carry a lyrics or melody take's words, after its /musegen/take:
    `/musegen/lyrics/line id index line syllables text` per line (all 0-based; `syllables`:
    the notes of its phrase), then `/musegen/lyrics/figures id index key value ...`."""
    params = take.params
    if take.operation == "melody_for":
        plan = params.get("plan", {}).get("lines", [])
        lines = [(len(ln["syllables"]), ln["text"]) for ln in plan]
    else:
        lines = list(zip(params.get("phrases", []), params.get("lines", [])))
    out: list[tuple[str, list]] = [("/musegen/lyrics/line", [rid, index, n, int(syl), str(text)])
                                   for n, (syl, text) in enumerate(lines)]
    flat: list = [rid, index]
    for k, v in params.get("figures", {}).items():
        if isinstance(v, bool):
            flat += [k, int(v)]
        elif isinstance(v, (int, float)):  # None (no rhyme pairs, no notes) is left out
            flat += [k, v]
    out.append(("/musegen/lyrics/figures", flat))
    return out


def _check(job: Job) -> None:
    """Stop here if the job was cancelled (the worker answers `cancelled while generating`)."""
    if job.cancel.is_set():
        raise InterruptedError("cancelled")


def _throttled(send: Callable[[float], None]) -> Callable[[float], None]:
    last = [0.0, -1.0]  # time, fraction

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or fraction - last[1] >= 0.25:
            last[0], last[1] = now, fraction
            send(fraction)
    return progress
