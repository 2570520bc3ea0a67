"""Atomic file writes, the one implementation every musegen writer uses: a crash or kill
never leaves a half-written take, checkpoint, shard or journal-adjacent file.

:func:`atomic_path` yields a temporary name in the target's folder; on success the file gets
the mode `open()` would have given it, is fsynced and ``os.replace``d onto the final name
(atomic on POSIX and Windows), and the folder is fsynced so the rename itself survives a
power cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = "", mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and move it into place.

    ``suffix`` is kept on the temporary name for writers that insist on an extension
    (``np.savez`` appends ``.npz`` otherwise). ``mode`` overrides the file's permission bits.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp",
                                    dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, default_file_mode() if mode is None else mode)  # mkstemp makes 0600
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def default_file_mode() -> int:
    """0o666 less the process umask: the mode `open()` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> Path:
    """Atomically write ``data`` to ``path``."""
    path = Path(path)
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: object) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Atomically write one JSON object per line."""
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Atomically write an uncompressed ``.npz`` holding ``arrays``."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
