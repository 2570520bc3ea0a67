"""Crash-safe file writes for a session folder: temp file + fsync + rename + fsync of the folder.

Every write goes through `musegen.atomic` (the one atomic write). Its temp files are named
`.<final name>.<random>.tmp`, so recovery can find and delete the leftovers of a write a crash
cut short.

Takes written outside a session (the CLI's `--out DIR`) get numbered names, `<stem>-<n>.mid`
+ `<stem>-<n>.json`: `write_numbered_takes` is the one place that picks them. It counts on from
the highest number already in the folder and creates each file with a rename that fails rather
than replace an existing file, so a second run (or two runs at once) never overwrites a take.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from musegen.atomic import TEMP_SUFFIX, create_new, fsync_dir

FILE_MODE = 0o644  # session files other than takes (the marker, orphans, exports)
__all__ = ["FILE_MODE", "create_new", "fsync_dir", "next_take_number", "stray_temp_files",
           "write_numbered_takes", "TEMP_SUFFIX"]


def stray_temp_files(folder: Path) -> list[Path]:
    """Leftover temp files of interrupted atomic writes anywhere under `folder`."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(f".*{TEMP_SUFFIX}") if p.is_file())


def next_take_number(folder: Path, stem: str) -> int:
    """1 + the highest n of any `<stem>-<n>.mid` or `.json` in `folder` (1 when none)."""
    pattern = re.compile(re.escape(stem) + r"-(\d+)\.(?:mid|json)")
    found = [int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else [])
             if (m := pattern.fullmatch(p.name))]
    return max(found, default=0) + 1


def write_numbered_takes(takes: Sequence[object], folder: str | os.PathLike[str],
                         stem: str) -> list[Path]:
    """Write `musegen.studio.Take`s as `<folder>/<stem>-<n>.mid` + a JSON sidecar each, numbered
    on from the takes already there; returns the MIDI paths. Never overwrites a file."""
    out_dir = Path(folder).expanduser()
    n, paths = next_take_number(out_dir, stem), []
    for t in takes:
        midi = t.clip.to_bytes()  # type: ignore[attr-defined]
        side = json.dumps(t.sidecar(), indent=1, default=str).encode()  # type: ignore[attr-defined]
        while True:
            mid = out_dir / f"{stem}-{n}.mid"
            n += 1
            if mid.with_suffix(".json").exists():
                continue
            try:
                create_new(mid, midi)
            except FileExistsError:
                continue
            try:
                create_new(mid.with_suffix(".json"), side)
            except FileExistsError:  # another writer took this number meanwhile
                mid.unlink()
                continue
            paths.append(mid)
            break
    return paths
