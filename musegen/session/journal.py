"""The session journal: an append-only file of JSON lines, each fsynced before `append` returns.

Every entry is one line `{"seq": n, "time": unix_s, "type": ..., ..., "crc": "1a2b3c4d"}`. The
journal is the session's single source of truth for decisions (accept, reject, edit, undo);
take files are written *before* the entry that names them, so an entry never points at a
half-written take. `crc` is the CRC-32 of the line as written without it (the same line with
`, "crc": "..."` left out), so damage that still parses as JSON (a flipped digit in a take id)
is caught too.

Two kinds of bad bytes, told apart and treated differently:

- a **torn tail**: bytes after the last newline, which a crash mid-append leaves (the line is
  written with its newline in one go, so only the last line can lack one). `read_journal`
  reports it with its exact bytes; the session cuts it (keeping a copy in `orphans/`);
- a **damaged line**: a complete line (it has its newline) that is not JSON, not an entry, or
  fails its checksum — disk damage or someone's editor. It is never cut, skipped silently or
  "repaired": it is reported as a `DamagedLine` (line number, raw text, the take ids it
  probably names) until a `resolve` entry names it.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ENTRY_TYPES = frozenset({"open", "recover", "request", "take", "accept", "reject", "edit", "undo",
                         "cancel", "error", "resolve"})
_CRC_TAIL = re.compile(rb', "crc": "([0-9a-f]{8})"\}$')
_TAKE_ID = re.compile(r"\bt\d{4,}\b")
_SEQ = re.compile(r'"seq"\s*:\s*(\d+)')
_TYPE = re.compile(r'"type"\s*:\s*"([^"]{0,40})"')


@dataclass(frozen=True)
class DamagedLine:
    """A complete journal line that can't be trusted. What it said is only guessed from its
    text (`kind`, `seq`, `takes`) to tell the musician which decisions are in doubt; the
    session's state never uses it."""

    line: int  # 1-based line number in journal.jsonl
    raw: str  # the line's bytes as text (undecodable bytes escaped as \\xNN)
    digest: str  # CRC-32 of the raw bytes: names this damage (a `resolve` entry quotes it)
    reason: str  # why it was refused, e.g. "checksum mismatch"
    takes: tuple[str, ...] = ()  # take ids the text names
    kind: str | None = None  # the entry type the text names, as written (may be damaged too)
    seq: int | None = None  # the seq the text names

    def as_dict(self) -> dict:
        return {"line": self.line, "digest": self.digest, "reason": self.reason,
                "takes": list(self.takes), "kind": self.kind, "seq": self.seq}


@dataclass
class JournalScan:
    """What reading a journal found: good entries, damaged lines, and a torn tail."""

    entries: list[dict] = field(default_factory=list)
    damaged: list[DamagedLine] = field(default_factory=list)
    torn_tail: bytes = b""  # bytes after the last complete line (a crash cut the write short)
    good_length: int = 0  # byte offset where the torn tail (if any) starts

    @property
    def bad_lines(self) -> list[int]:
        """Line numbers of the damaged lines."""
        return [d.line for d in self.damaged]

    @property
    def torn_tail_bytes(self) -> int:
        return len(self.torn_tail)


def read_journal(path: Path, *, require_checksums: bool = False) -> JournalScan:
    """Parse every complete line. A line without a checksum is accepted only when
    `require_checksums` is false and no checksummed line came before it (journals written
    before checksums existed); after the first checksummed line every line needs one."""
    scan = JournalScan()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return scan
    pos, lineno, need_crc = 0, 0, require_checksums
    while pos < len(data):
        nl = data.find(b"\n", pos)
        lineno += 1
        if nl < 0:  # no newline: the write of the last line was cut short
            scan.torn_tail = data[pos:]
            break
        line = data[pos:nl]
        pos = nl + 1
        if not line.strip():
            continue
        entry, reason, had_crc = parse_line(line, need_crc)
        if entry is None:
            scan.damaged.append(damaged_line(lineno, line, reason))
        else:
            scan.entries.append(entry)
        need_crc = need_crc or had_crc
    scan.good_length = len(data) - len(scan.torn_tail)
    return scan


def encode_entry(entry: dict) -> bytes:
    """The journal line for `entry`, its checksum last, newline included."""
    body = json.dumps(entry, default=str, ensure_ascii=False).encode()
    return body[:-1] + b', "crc": "%08x"}\n' % zlib.crc32(body)


def parse_line(line: bytes, need_crc: bool) -> tuple[dict | None, str, bool]:
    """(entry or None, why not, whether it carried a checksum)."""
    m = _CRC_TAIL.search(line)
    if m is not None and zlib.crc32(line[:m.start()] + b"}") != int(m.group(1), 16):
        return None, "its checksum does not match: it changed after it was written", True
    try:
        entry = json.loads(line)
    except UnicodeDecodeError:
        return None, "not UTF-8 text", m is not None
    except ValueError as e:
        return None, f"not valid JSON ({e})", m is not None
    if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
        return None, "not a journal entry (no integer seq)", m is not None
    if entry.get("type") not in ENTRY_TYPES:
        return None, f"unknown entry type {entry.get('type')!r}", m is not None
    if m is None and (need_crc or "crc" in entry):
        return None, "no checksum where one is required", False
    entry.pop("crc", None)
    return entry, "", m is not None


def damaged_line(lineno: int, line: bytes, reason: str) -> DamagedLine:
    raw = line.decode("utf-8", errors="backslashreplace")
    seq, kind = _SEQ.search(raw), _TYPE.search(raw)
    return DamagedLine(line=lineno, raw=raw, digest=f"{zlib.crc32(line):08x}", reason=reason,
                       takes=tuple(dict.fromkeys(_TAKE_ID.findall(raw))),
                       kind=kind.group(1) if kind else None,
                       seq=int(seq.group(1)) if seq else None)


def repair_tail(path: Path, good_length: int) -> None:
    """Cut the file back to `good_length` bytes (the end of its last complete line)."""
    with open(path, "r+b") as f:
        f.truncate(good_length)
        f.flush()
        os.fsync(f.fileno())


class Journal:
    """Appends entries with increasing `seq`; thread-safe; each append is fsynced."""

    def __init__(self, path: Path, next_seq: int) -> None:
        self.path = path
        self._next_seq = next_seq
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, type_: str, **fields: object) -> dict:
        """Write one entry and fsync it; returns the entry as written (without its checksum)."""
        assert type_ in ENTRY_TYPES, type_
        with self._lock:
            entry = {"seq": self._next_seq, "time": round(time.time(), 3), "type": type_, **fields}
            line = encode_entry(entry)
            written = 0
            while written < len(line):  # os.write may write less than asked
                written += os.write(self._fd, line[written:])
            os.fsync(self._fd)
            self._next_seq += 1
            back = json.loads(line)  # what a reader gets back (JSON types), minus the crc
            back.pop("crc")
            return back

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
