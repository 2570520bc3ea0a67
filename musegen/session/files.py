"""Crash-safe file writes for a session folder: temp file + fsync + rename + fsync of the folder.

Temp files are named `.<final name>.<random>.tmp` (as `musegen.clip.atomic_write_bytes` names
them), so recovery can find and delete the leftovers of a write a crash cut short.
"""

from __future__ import annotations

from pathlib import Path

from musegen.atomic import fsync_dir, write_bytes

TEMP_SUFFIX = ".tmp"
__all__ = ["atomic_write", "fsync_dir", "stray_temp_files", "TEMP_SUFFIX"]


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write `data` to `path` so that a crash leaves the old file, the new one, or no file."""
    return write_bytes(path, data, mode=mode)


def stray_temp_files(folder: Path) -> list[Path]:
    """Leftover temp files of interrupted atomic writes anywhere under `folder`."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(f".*{TEMP_SUFFIX}") if p.is_file())
