"""The session journal: an append-only file of JSON lines, each fsynced before `append` returns.

Every entry is one line `{"seq": n, "time": unix_s, "type": ..., ...}`. The journal is the
session's single source of truth for decisions (accept, reject, edit, undo); take files are
written *before* the entry that names them, so an entry never points at a half-written take.

A crash can leave at most one torn line at the end (a write cut short: no trailing newline).
`read_journal` tolerates it and reports it; `repair_tail` cuts it off so the next append starts
on a clean line. Complete lines that fail to parse (disk damage, someone's editor) are skipped
and counted, never deleted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ENTRY_TYPES = frozenset({"open", "recover", "request", "take", "accept", "reject", "edit", "undo",
                         "cancel", "error"})


@dataclass
class JournalScan:
    """What reading a journal found: good entries, plus what had to be skipped."""

    entries: list[dict] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)  # 1-based line numbers skipped
    torn_tail_bytes: int = 0  # bytes after the last complete line
    good_length: int = 0  # byte offset where the torn tail (if any) starts


def read_journal(path: Path) -> JournalScan:
    """Parse every complete line; a last line without a newline or not JSON counts as torn."""
    scan = JournalScan()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return scan
    pos, lineno = 0, 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        lineno += 1
        if nl < 0:  # no newline: the write of the last line was cut short
            scan.torn_tail_bytes = len(data) - pos
            break
        line = data[pos:nl]
        entry = _parse(line)
        if entry is None:
            if line.strip():
                scan.bad_lines.append(lineno)
        else:
            scan.entries.append(entry)
        pos = nl + 1
    scan.good_length = len(data) - scan.torn_tail_bytes
    return scan


def _parse(line: bytes) -> dict | None:
    try:
        entry = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int) \
            or entry.get("type") not in ENTRY_TYPES:
        return None
    return entry


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
        """Write one entry and fsync it; returns the entry as written."""
        assert type_ in ENTRY_TYPES, type_
        with self._lock:
            entry = {"seq": self._next_seq, "time": round(time.time(), 3), "type": type_, **fields}
            line = (json.dumps(entry, default=str, ensure_ascii=False) + "\n").encode()
            written = 0
            while written < len(line):  # os.write may write less than asked
                written += os.write(self._fd, line[written:])
            os.fsync(self._fd)
            self._next_seq += 1
            return entry

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
