"""Atomic file writes, the one implementation every musegen writer uses: a crash or kill
never leaves a half-written take, checkpoint, shard or journal-adjacent file.

:func:`atomic_path` yields a temporary name in the target's folder; on success the file gets
the mode `open()` would have given it, is fsynced and ``os.replace``d onto the final name
(atomic on POSIX and Windows), and the folder is fsynced so the rename itself survives a
power cut. :func:`create_new` is the same write for a name that must not exist yet (it never
replaces a file).

Temporary files are named ``.<final name>.<random><suffix>.tmp``, so recovery can find and
delete the leftovers of a write a crash cut short (``musegen.session.files.stray_temp_files``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = "", mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and move it into place.

    ``suffix`` is kept on the temporary name for writers that insist on an extension
    (``np.savez`` appends ``.npz`` otherwise). ``mode`` overrides the file's permission bits.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + TEMP_SUFFIX,
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
