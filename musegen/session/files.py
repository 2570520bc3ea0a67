"""Crash-safe file writes for a session folder: temp file + fsync + rename + fsync of the folder.

Temp files are named `.<final name>.<random>.tmp` (as `musegen.clip.atomic_write_bytes` names
them), so recovery can find and delete the leftovers of a write a crash cut short.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable (a no-op where folders can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write `data` to `path` so that a crash leaves the old file, the new one, or no file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # mkstemp makes 0600; let the musician's other tools read
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def stray_temp_files(folder: Path) -> list[Path]:
    """Leftover temp files of interrupted atomic writes anywhere under `folder`."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(f".*{TEMP_SUFFIX}") if p.is_file())
