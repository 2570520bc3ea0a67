"""`Session`: a folder holding every take of a writing session and the journal of decisions.

    DIR/session.json      format marker
    DIR/journal.jsonl     append-only, one fsynced JSON line per event
    DIR/takes/t0001.mid   each take: MIDI + JSON sidecar, both written atomically
    DIR/takes/t0001.json
    DIR/orphans/          files a crash left incomplete (moved here on recovery, never deleted)

Opening a session for writing takes an exclusive lock (one writer at a time) and recovers from
whatever a crash left behind (see `musegen.session.recover`). Read-only opens take no lock and
change nothing. The session prints nothing; every method is thread-safe.

What can't be recovered is never guessed away: `Session.problems()` lists damaged journal lines
(until `Session.resolve(line)` journals that the musician dealt with one) and takes whose files
are missing or damaged (which the session refuses to accept, reject, read or export).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass, replace
from pathlib import Path

from musegen.atomic import write_bytes
from musegen.clip import Clip, read_regular_file
from musegen.errors import MusegenError
from musegen.session import history as hist
from musegen.session.files import FILE_MODE
from musegen.session.history import History, TakeRecord
from musegen.session.journal import DamagedLine, Journal, read_journal, repair_tail
from musegen.session.recover import RecoveryReport, keep_torn_tail, remove_temp_files, scan_takes, take_damage

FORMAT = {"format": "musegen-session", "version": 1}
CHECKSUMS = {"journal_checksums": "crc32"}  # in session.json: every journal line carries a crc
_ID = re.compile(r"^t(\d+)")
TAKE_MODE = 0o444  # takes never change: a DAW saving over one gets an error, not a lost take


class SessionError(MusegenError, ValueError):
    """A session can't be opened, or a request names a take it doesn't hold (or can't use)."""


@dataclass(frozen=True)
class Problem:
    """Something wrong with a session that it will not guess away: a damaged journal line
    (`line` set; gone once resolved) or a take whose files are missing or damaged."""

    kind: str  # "journal-line" or "take-files"
    message: str  # one line, naming the line or take, the file, and what is in doubt
    takes: tuple[str, ...] = ()  # the takes concerned (for a journal line: those its text names)
    line: int | None = None  # the journal line number
    raw: str | None = None  # the damaged line's text


class Session:
    """A take history in a folder. Use `Session.open(path)`; close it (or use `with`)."""

    def __init__(self, folder: Path, *, readonly: bool, lock_fd: int | None) -> None:
        self.folder = folder
        self.takes_dir = folder / "takes"
        self.readonly = readonly
        self._lock_fd = lock_fd
        self._mutex = threading.RLock()
        self._history = History()
        self._next_id = 1
        self._journal: Journal | None = None
        self._damaged_lines: list[DamagedLine] = []
        self.recovery = RecoveryReport()

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, folder: str | os.PathLike[str], *, create: bool = True,
             readonly: bool = False) -> Session:
        """Open (and, unless read-only, lock and recover) the session in `folder`."""
        path = Path(folder).expanduser().resolve()
        marker = path / "session.json"
        if not marker.exists():
            if readonly or not create:
                raise SessionError(f"{path}: not a musegen session (no session.json)")
            if path.exists() and not path.is_dir():
                raise SessionError(f"{path}: exists and is not a folder")
            if path.exists() and any(p for p in path.iterdir() if not p.name.startswith(".")):
                raise SessionError(f"{path}: folder is not empty and holds no session.json; "
                                   "pick a new or empty folder")
            path.mkdir(parents=True, exist_ok=True)
            meta = {**FORMAT, **CHECKSUMS, "created": time.time()}
            write_bytes(marker, json.dumps(meta).encode(), FILE_MODE)
        else:
            meta = _check_marker(marker)
        lock_fd = None if readonly else _lock(path)
        s = cls(path, readonly=readonly, lock_fd=lock_fd)
        try:
            s._load(require_checksums=meta.get("journal_checksums") == CHECKSUMS["journal_checksums"])
        except BaseException:
            s.close()
            raise
        return s

    def _load(self, *, require_checksums: bool) -> None:
        jpath = self.folder / "journal.jsonl"
        report = self.recovery
        if not self.readonly:
            remove_temp_files(self.folder, report)
        scan = read_journal(jpath, require_checksums=require_checksums)
        # a read-only open leaves a torn tail alone: the writer may be appending that line now
        if scan.torn_tail and not self.readonly:
            report.torn_tail_kept = keep_torn_tail(self.folder, scan.torn_tail, scan.good_length)
            report.torn_journal_bytes = len(scan.torn_tail)
            repair_tail(jpath, scan.good_length)
        self._history = hist.replay(scan.entries, self.takes_dir)
        self._damaged_lines = scan.damaged
        report.damaged_lines = self._unresolved_lines()
        named = [_id_number(t) for d in scan.damaged for t in d.takes]  # never reuse those ids
        self._next_id = 1 + max([_id_number(t) for t in self._history.takes] + _file_ids(self.folder)
                                + named, default=0)
        if not self.readonly:
            self.takes_dir.mkdir(exist_ok=True)
            next_seq = max([self._history.last_seq] + [d.seq or 0 for d in scan.damaged]) + 1
            self._journal = Journal(jpath, next_seq)
            for side in scan_takes(self.takes_dir, set(self._history.takes), report):
                self._log("take", **_entry_from_sidecar(side), recovered=True)
                report.adopted.append(side["take_id"])
        for rec in list(self._history.takes.values()):
            damage = take_damage(rec.id, rec.midi_path, rec.sidecar_path)
            if damage:
                report.damaged_takes[rec.id] = damage
                self._history.takes[rec.id] = replace(rec, damage=damage)
        if not self.readonly:
            self._log_recovery()

    def _log_recovery(self) -> None:
        """Journal what this open repaired or found, leaving out damage an earlier `recover`
        entry already reported (so reopening a damaged session adds nothing)."""
        r, known_lines, known_takes = self.recovery, set(), set()
        for e in self._history.by_seq.values():
            if e["type"] == "recover":
                known_lines |= {(d.get("line"), d.get("digest")) for d in e.get("damaged_lines") or []
                                if isinstance(d, dict)}
                known_takes |= {(t, m) for t, m in (e.get("damaged_takes") or {}).items()}
        lines = [d.as_dict() for d in r.damaged_lines if (d.line, d.digest) not in known_lines]
        takes = {t: m for t, m in r.damaged_takes.items() if (t, m) not in known_takes}
        if r.repaired or lines or takes:
            self._log("recover", temp_files_removed=r.temp_files_removed,
                      torn_journal_bytes=r.torn_journal_bytes, torn_tail_kept=r.torn_tail_kept,
                      adopted=r.adopted, orphaned=r.orphaned, damaged_lines=lines,
                      damaged_takes=takes)

    def _unresolved_lines(self) -> list[DamagedLine]:
        with self._mutex:
            return [d for d in self._damaged_lines
                    if (d.line, d.digest) not in self._history.resolved]

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    @property
    def journal_path(self) -> Path:
        return self.folder / "journal.jsonl"

    def takes(self, *, status: str | None = None, include_undone: bool = False) -> list[TakeRecord]:
        """Takes in creation order; undone edits only when asked."""
        with self._mutex:
            out = list(self._history.takes.values())
        return [t for t in out if (include_undone or not t.undone)
                and (status is None or t.status == status)]

    def take(self, take_id: str) -> TakeRecord:
        with self._mutex:
            rec = self._history.takes.get(str(take_id))
        if rec is None:
            raise SessionError(f"no take {take_id!r} in session {self.folder.name}")
        return rec

    def clip(self, take_id: str) -> Clip:
        """The take's notes, read from its MIDI file."""
        return Clip.load(self.usable(take_id).midi_path)

    def sidecar(self, take_id: str) -> dict:
        return json.loads(self.usable(take_id).sidecar_path.read_text(encoding="utf-8"))

    def usable(self, take_id: str) -> TakeRecord:
        """The take, after checking its files again; SessionError naming the take and the file
        when one is missing or damaged (also when it went missing after the session opened)."""
        rec = self.take(take_id)
        damage = take_damage(rec.id, rec.midi_path, rec.sidecar_path)
        if damage != rec.damage:
            with self._mutex:
                rec = self._history.takes[rec.id] = replace(self._history.takes[rec.id],
                                                            damage=damage)
                if damage:
                    self.recovery.damaged_takes[rec.id] = damage
                else:
                    self.recovery.damaged_takes.pop(rec.id, None)
        if damage:
            raise SessionError(f"take {rec.id} can't be used: {damage}")
        return rec

    def lineage(self, take_id: str) -> list[TakeRecord]:
        """The take, its parent, its parent's parent... back to an import or a first take."""
        chain, seen = [], set()
        rec: TakeRecord | None = self.take(take_id)
        while rec is not None and rec.id not in seen:
            chain.append(rec)
            seen.add(rec.id)
            with self._mutex:
                rec = self._history.takes.get(rec.parent) if rec.parent else None
        return chain

    def entries(self) -> list[dict]:
        """The journal, in order."""
        with self._mutex:
            return [self._history.by_seq[s] for s in sorted(self._history.by_seq)]

    def requests(self) -> dict[str, dict]:
        with self._mutex:
            return dict(self._history.requests)

    def problems(self) -> list[Problem]:
        """What is wrong and was not guessed away: unresolved damaged journal lines, then takes
        whose files are missing or damaged. Empty for a healthy session."""
        out = []
        for d in self._unresolved_lines():
            what = f"probably {'an' if (d.kind or 'x')[0] in 'aeiou' else 'a'} {d.kind!r} entry" \
                if d.kind else "its entry type can't be read"
            seq = f" (seq {d.seq})" if d.seq is not None else ""
            about = (f"about {', '.join(d.takes)}, so what the journal says about "
                     f"{'it' if len(d.takes) == 1 else 'them'} may be incomplete") \
                if d.takes else "naming no readable take"
            out.append(Problem("journal-line", f"journal line {d.line} is damaged ({d.reason}) and "
                               f"was left out: {what}{seq} {about}; the line reads: {d.raw}",
                               d.takes, d.line, d.raw))
        for t in self.takes(include_undone=True):
            if t.damage:
                out.append(Problem("take-files", f"take {t.id}: {t.damage}; it can't be accepted, "
                                   "rejected, shown or exported", (t.id,)))
        return out

    def in_doubt(self) -> dict[str, list[int]]:
        """Take id -> the unresolved damaged journal lines that name it."""
        out: dict[str, list[int]] = {}
        for d in self._unresolved_lines():
            for t in d.takes:
                out.setdefault(t, []).append(d.line)
        return out

    # ------------------------------------------------------------------ writing
    def log_request(self, request_id: str, operation: str, params: dict,
                    client: str | None = None) -> dict:
        """Journal a request before it runs (so a crash mid-generation is still on record)."""
        return self._log("request", request=str(request_id), operation=operation,
                         params=_jsonable(params), client=client)

    def log_outcome(self, request_id: str, kind: str, message: str) -> dict:
        """Journal a request that ended without takes: `kind` is 'cancel' or 'error'."""
        if kind not in ("cancel", "error"):
            raise ValueError(f"outcome kind must be 'cancel' or 'error', got {kind!r}")
        return self._log(kind, request=str(request_id), message=message)

    def add_takes(self, takes: Sequence[object], *, parent: str | None = None,
                  request_id: str | None = None) -> list[TakeRecord]:
        """Store generated `musegen.studio.Take`s; each is on disk and journaled on return.
        `parent` is the session take they were made from (None: made from nothing)."""
        if parent is not None:
            self.take(parent)
        out = []
        for t in takes:
            side = dict(t.sidecar())  # type: ignore[attr-defined]
            side["content_id"] = side.pop("take_id")
            side["model_parent"] = side.pop("parent", None)
            out.append(self._store(t.clip.to_bytes(), side, t.clip,  # type: ignore[attr-defined]
                                   operation=t.operation, parent=parent,  # type: ignore[attr-defined]
                                   request_id=request_id, entry_type="take"))
        return out

    def import_clip(self, clip: Clip | str | os.PathLike[str], *, operation: str = "import",
                    parent: str | None = None, request_id: str | None = None,
                    source: str | None = None, data: bytes | None = None) -> TakeRecord:
        """Store a musician's clip (or MIDI file, kept byte for byte) as a take. `data`: the
        MIDI bytes a `Clip` was parsed from, stored as they are instead of re-encoding it."""
        data, clip, source = _clip_and_bytes(clip, source, data)
        if parent is not None:
            self.take(parent)
        return self._store(data, {"source": source}, clip, operation=operation, parent=parent,
                           request_id=request_id, entry_type="take", source=source)

    def edit(self, take_id: str, edited: Clip | str | os.PathLike[str], *,
             request_id: str | None = None, source: str | None = None) -> TakeRecord:
        """Import the musician's edited version of `take_id` as a new take whose parent it is;
        later continuations from the new take start from their edit."""
        self.take(take_id)
        data, clip, source = _clip_and_bytes(edited, source)
        return self._store(data, {"source": source}, clip, operation="edit", parent=take_id,
                           request_id=request_id, entry_type="edit", source=source)

    def resolve(self, line: int, *, request_id: str | None = None) -> dict:
        """Journal that the musician has dealt with damaged journal line `line` (checked the
        takes it names and decided them again where needed); it stops being a problem. The
        line itself stays in the journal, and the `resolve` entry keeps a copy of its text."""
        with self._mutex:
            todo = self._unresolved_lines()
            match = [d for d in todo if d.line == line]
            if not match:
                left = ", ".join(str(d.line) for d in todo) or "none"
                raise SessionError(f"journal line {line} is not a damaged line awaiting a "
                                   f"resolution (damaged lines: {left})")
            d = match[0]
            entry = self._log("resolve", line=d.line, digest=d.digest, takes=list(d.takes),
                              raw=d.raw, request=request_id)
            self.recovery.damaged_lines = self._unresolved_lines()
            return entry

    def accept(self, take_id: str, *, request_id: str | None = None) -> TakeRecord:
        return self._decide("accept", take_id, request_id)

    def reject(self, take_id: str, *, request_id: str | None = None) -> TakeRecord:
        return self._decide("reject", take_id, request_id)

    def undo(self, *, request_id: str | None = None) -> tuple[dict, TakeRecord]:
        """Reverse the latest accept, reject or edit not undone yet; returns (that entry, the
        take as it is now). Raises SessionError when there is nothing to undo."""
        with self._mutex:
            target = self._history.undo_target()
            if target is None:
                raise SessionError("nothing to undo (no accept, reject or edit left)")
            self._log("undo", undoes=target["seq"], what=target["type"], take=target["take"],
                      request=request_id)
            return target, self._history.takes[target["take"]]

    def export(self, take_id: str, dest: str | os.PathLike[str]) -> Path:
        """Copy a take's MIDI (and sidecar) to `dest` (a .mid path, or a folder)."""
        rec = self.usable(take_id)
        d = Path(dest).expanduser()
        if d.is_dir() or d.suffix.lower() not in (".mid", ".midi"):
            d = d / f"{self.folder.name}-{rec.id}.mid"
        write_bytes(d, rec.midi_path.read_bytes(), FILE_MODE)
        write_bytes(d.with_suffix(".json"), rec.sidecar_path.read_bytes(), FILE_MODE)
        return d

    # ---------------------------------------------------------------- internals
    def _decide(self, kind: str, take_id: str, request_id: str | None) -> TakeRecord:
        with self._mutex:
            rec = self.usable(take_id)
            if rec.undone:
                raise SessionError(f"take {take_id!r} is an undone edit; edit again instead")
            self._log(kind, take=rec.id, request=request_id)
            return self._history.takes[rec.id]

    def _store(self, data: bytes, side: dict, clip: Clip, *, operation: str, parent: str | None,
               request_id: str | None, entry_type: str, source: str | None = None) -> TakeRecord:
        self._writable()
        with self._mutex:
            tid = f"t{self._next_id:04d}"
            self._next_id += 1
            side = {**_jsonable(side), "take_id": tid, "operation": operation, "parent": parent,
                    "request": request_id, "session": self.folder.name, "n_bars": clip.n_bars,
                    "n_notes": clip.n_notes, "created": round(time.time(), 3)}
            mid = self.takes_dir / f"{tid}.mid"
            write_bytes(mid, data, TAKE_MODE)
            write_bytes(mid.with_suffix(".json"),
                        json.dumps(side, indent=1, default=str, ensure_ascii=False).encode(), TAKE_MODE)
            entry = self._log(entry_type, **_entry_from_sidecar(side), source=source)
            return self._history.takes[entry["take"]]

    def _log(self, kind: str, **fields: object) -> dict:
        self._writable()
        with self._mutex:
            entry = self._journal.append(kind, **fields)  # type: ignore[union-attr]
            hist.apply(self._history, entry, self.takes_dir)
            return entry

    def _writable(self) -> None:
        if self.readonly or self._journal is None:
            raise SessionError(f"session {self.folder} is open read-only (or closed)")


# -------------------------------------------------------------------- helpers
def _check_marker(marker: Path) -> dict:
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SessionError(f"{marker}: unreadable session marker ({e})") from None
    if meta.get("format") != FORMAT["format"]:
        raise SessionError(f"{marker}: not a musegen session file")
    if int(meta.get("version", 0)) > FORMAT["version"]:
        raise SessionError(f"{marker}: session format {meta.get('version')} is newer than this "
                           f"musegen understands ({FORMAT['version']})")
    return meta


def _lock(folder: Path) -> int | None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock, one writer by convention
        return None
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SessionError(f"session {folder} is open in another process (pid {holder}); "
                           "send it requests (OSC) or open this one read-only") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _id_number(take_id: str) -> int:
    m = _ID.match(take_id)
    return int(m.group(1)) if m else 0


def _file_ids(folder: Path) -> list[int]:
    out = []
    for sub in ("takes", "orphans"):
        d = folder / sub
        if d.exists():
            out += [_id_number(p.name) for p in d.iterdir()]
    return out


def _entry_from_sidecar(side: dict) -> dict:
    return {"take": side["take_id"], "operation": side.get("operation"),
            "parent": side.get("parent"), "request": side.get("request"),
            "n_bars": side.get("n_bars", 0), "n_notes": side.get("n_notes", 0),
            "seed": side.get("seed"), "model_id": side.get("model_id"),
            "params": side.get("params") or {}}


def _clip_and_bytes(clip: Clip | str | os.PathLike[str], source: str | None,
                    data: bytes | None = None) -> tuple[bytes, Clip, str | None]:
    if isinstance(clip, Clip):
        return (clip.to_bytes() if data is None else data), clip, source
    p = Path(clip).expanduser()
    data = read_regular_file(p)  # read once: what is stored is exactly what was parsed
    return data, Clip.from_bytes(data, name=p.stem, source=p), source or str(p.resolve())


def _jsonable(obj: object) -> object:
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    return json.loads(json.dumps(obj, default=str))


__all__ = ["Session", "SessionError", "Problem", "TakeRecord", "RecoveryReport"]
