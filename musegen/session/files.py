"""Crash-safe file writes for a session folder: temp file + fsync + rename + fsync of the folder.

Temp files are named `.<final name>.<random>.tmp` (as `musegen.clip.atomic_write_bytes` names
them), so recovery can find and delete the leftovers of a write a crash cut short.

Takes written outside a session (the CLI's `--out DIR`) get numbered names, `<stem>-<n>.mid`
+ `<stem>-<n>.json`: `write_numbered_takes` is the one place that picks them. It counts on from
the highest number already in the folder and creates each file with a rename that fails rather
than replace an existing file, so a second run (or two runs at once) never overwrites a take.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from musegen.atomic import default_file_mode, fsync_dir, write_bytes

TEMP_SUFFIX = ".tmp"
__all__ = ["atomic_write", "create_new", "fsync_dir", "next_take_number", "stray_temp_files",
           "write_numbered_takes", "TEMP_SUFFIX"]


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write `data` to `path` so that a crash leaves the old file, the new one, or no file."""
    return write_bytes(path, data, mode=mode)


def stray_temp_files(folder: Path) -> list[Path]:
    """Leftover temp files of interrupted atomic writes anywhere under `folder`."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(f".*{TEMP_SUFFIX}") if p.is_file())


def create_new(path: Path, data: bytes) -> Path:
    """Write `data` to a new file `path`, atomically; FileExistsError if `path` exists (it is
    never replaced, even by a writer racing this one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600
        try:
            os.link(tmp, path)  # unlike rename, fails when `path` exists
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: claim the name, then fill it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, default_file_mode()))
            os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
