"""Bringing a session folder back to a consistent state after a crash (kill -9, power loss).

Order of writes for a take: MIDI file, then its JSON sidecar, then the journal entry. So after
a crash a folder can hold:

- temp files of an atomic write cut short -> deleted;
- a torn last journal line -> cut off (the complete lines before it are kept) and its bytes
  kept in `orphans/journal-tail-<offset>.bin`;
- a damaged complete journal line -> reported, never cut (see `musegen.session.journal`);
- a MIDI file without its sidecar (or the reverse), or files that don't parse -> moved to
  `orphans/` (never deleted: nobody was told about them, but they are someone's notes);
- a complete MIDI + sidecar pair that the journal doesn't name yet -> adopted: the journal gets
  its `take` entry, marked `recovered`;
- a journaled take whose files are missing or damaged -> reported, and the session refuses to
  use it (this should not happen, since files are fsynced before the entry is written; a
  person deleting or editing a file does it).

Every open checks the files again, read-only opens too; only what is new since the last
`recover` entry is journaled, so reopening a damaged session does not add an entry each time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from musegen.atomic import write_bytes
from musegen.session.files import FILE_MODE, fsync_dir, stray_temp_files
from musegen.session.journal import DamagedLine


@dataclass
class RecoveryReport:
    """What opening the session found and did. `damaged_lines` and `damaged_takes` are what is
    wrong *now* (unresolved); the rest is what this open repaired."""

    temp_files_removed: list[str] = field(default_factory=list)
    torn_journal_bytes: int = 0
    torn_tail_kept: str | None = None  # where the cut bytes were kept, relative to the folder
    damaged_lines: list[DamagedLine] = field(default_factory=list)  # unresolved ones
    adopted: list[str] = field(default_factory=list)  # take ids
    orphaned: list[str] = field(default_factory=list)  # file names moved to orphans/
    damaged_takes: dict[str, str] = field(default_factory=dict)  # take id -> what is wrong

    @property
    def bad_journal_lines(self) -> list[int]:
        return [d.line for d in self.damaged_lines]

    @property
    def missing(self) -> list[str]:
        """Journaled take ids whose files are missing or damaged."""
        return sorted(self.damaged_takes)

    @property
    def repaired(self) -> bool:
        """Whether this open changed anything on disk."""
        return bool(self.temp_files_removed or self.torn_journal_bytes or self.adopted
                    or self.orphaned)

    @property
    def clean(self) -> bool:
        return not (self.repaired or self.damaged_lines or self.damaged_takes)

    def summary(self) -> str:
        """One line saying what this open repaired ('' when nothing)."""
        parts = []
        if self.temp_files_removed:
            parts.append(f"{len(self.temp_files_removed)} temp file(s) of an interrupted write removed")
        if self.torn_journal_bytes:
            parts.append(f"a torn last journal line ({self.torn_journal_bytes} byte(s), kept in "
                         f"{self.torn_tail_kept}) cut")
        if self.adopted:
            parts.append(f"{len(self.adopted)} unjournaled take(s) adopted: {', '.join(self.adopted)}")
        if self.orphaned:
            parts.append(f"{len(self.orphaned)} incomplete file(s) moved to orphans/: "
                         f"{', '.join(self.orphaned)}")
        return "; ".join(parts)


def take_damage(take_id: str, midi: Path, sidecar: Path) -> str | None:
    """What is wrong with a journaled take's files, or None when both look intact."""
    if not midi.exists():
        return f"its MIDI file {midi} is missing"
    if not midi_looks_intact(midi):
        return f"its MIDI file {midi} is damaged (not a complete MIDI file)"
    if not sidecar.exists():
        return f"its sidecar {sidecar} is missing"
    try:
        side = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"its sidecar {sidecar} is unreadable ({e})"
    if not isinstance(side, dict) or side.get("take_id") != take_id:
        return f"its sidecar {sidecar} does not describe take {take_id}"
    return None


def keep_torn_tail(folder: Path, data: bytes, offset: int) -> str:
    """Save the bytes of a torn journal line under orphans/ before they are cut."""
    orphans = folder / "orphans"
    dest, n = orphans / f"journal-tail-{offset}.bin", 1
    while dest.exists():
        dest, n = orphans / f"journal-tail-{offset}.{n}.bin", n + 1
    write_bytes(dest, data, FILE_MODE)
    return str(dest.relative_to(folder))


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
