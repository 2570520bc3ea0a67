"""Bringing a session folder back to a consistent state after a crash (kill -9, power loss).

Order of writes for a take: MIDI file, then its JSON sidecar, then the journal entry. So after
a crash a folder can hold:

- temp files of an atomic write cut short -> deleted;
- a torn last journal line -> cut off (the complete lines before it are kept);
- a MIDI file without its sidecar (or the reverse), or files that don't parse -> moved to
  `orphans/` (never deleted: nobody was told about them, but they are someone's notes);
- a complete MIDI + sidecar pair that the journal doesn't name yet -> adopted: the journal gets
  its `take` entry, marked `recovered`;
- a journaled take whose files are missing or damaged -> reported (this should not happen,
  since files are fsynced before the entry is written).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from musegen.session.files import fsync_dir, stray_temp_files


@dataclass
class RecoveryReport:
    temp_files_removed: list[str] = field(default_factory=list)
    torn_journal_bytes: int = 0
    bad_journal_lines: list[int] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)  # take ids
    orphaned: list[str] = field(default_factory=list)  # file names moved to orphans/
    missing: list[str] = field(default_factory=list)  # journaled take ids without intact files

    @property
    def clean(self) -> bool:
        return not (self.temp_files_removed or self.torn_journal_bytes or self.bad_journal_lines
                    or self.adopted or self.orphaned or self.missing)

    def as_dict(self) -> dict:
        return {"temp_files_removed": self.temp_files_removed,
                "torn_journal_bytes": self.torn_journal_bytes,
                "bad_journal_lines": self.bad_journal_lines, "adopted": self.adopted,
                "orphaned": self.orphaned, "missing": self.missing}


def remove_temp_files(folder: Path, report: RecoveryReport) -> None:
    for p in stray_temp_files(folder):
        p.unlink(missing_ok=True)
        report.temp_files_removed.append(str(p.relative_to(folder)))


def midi_looks_intact(path: Path) -> bool:
    """Cheap check (no full parse): a header, and every track chunk as long as it says."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if len(data) < 14 or data[:4] != b"MThd":
        return False
    pos = 8 + int.from_bytes(data[4:8], "big")
    n_tracks = int.from_bytes(data[10:12], "big")
    for _ in range(n_tracks):
        if pos + 8 > len(data) or data[pos:pos + 4] != b"MTrk":
            return False
        pos += 8 + int.from_bytes(data[pos + 4:pos + 8], "big")
    return pos <= len(data)


def read_sidecar(path: Path) -> dict | None:
    try:
        side = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return side if isinstance(side, dict) and isinstance(side.get("take_id"), str) else None


def scan_takes(takes_dir: Path, journaled: set[str], report: RecoveryReport) -> list[dict]:
    """Sidecars of complete, unjournaled takes to adopt; incomplete files go to `orphans/`."""
    if not takes_dir.exists():
        return []
    stems: dict[str, set[str]] = {}
    for p in takes_dir.iterdir():
        if p.is_file() and not p.name.startswith(".") and p.suffix in (".mid", ".json"):
            stems.setdefault(p.stem, set()).add(p.suffix)
    adopt = []
    for stem in sorted(stems):
        mid, side = takes_dir / f"{stem}.mid", takes_dir / f"{stem}.json"
        if stem in journaled:
            continue
        sidecar = read_sidecar(side) if side.exists() else None
        if mid.exists() and sidecar is not None and sidecar["take_id"] == stem \
                and midi_looks_intact(mid):
            adopt.append(sidecar)
            continue
        _move_to_orphans(takes_dir, [p for p in (mid, side) if p.exists()], report)
    for tid in sorted(journaled):
        mid = takes_dir / f"{tid}.mid"
        if not (mid.exists() and midi_looks_intact(mid)):
            report.missing.append(tid)
    return adopt


def _move_to_orphans(takes_dir: Path, paths: list[Path], report: RecoveryReport) -> None:
    orphans = takes_dir.parent / "orphans"
    orphans.mkdir(exist_ok=True)
    for p in paths:
        dest = orphans / p.name
        n = 1
        while dest.exists():
            dest = orphans / f"{p.stem}.{n}{p.suffix}"
            n += 1
        os.replace(p, dest)
        report.orphaned.append(p.name)
    fsync_dir(orphans)
    fsync_dir(takes_dir)
