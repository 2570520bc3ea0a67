"""The on-disk token shards: ``shards/{split}-{k:04d}.npz``.

Each shard is an uncompressed ``.npz`` with

* ``tokens``  — uint16, every piece's token ids concatenated;
* ``offsets`` — int64, ``n + 1`` values: piece ``i`` is ``tokens[offsets[i]:offsets[i+1]]``;
* ``style``   — int16, the style index of each piece (see ``styles.json``).

A shard holds at most about :data:`SHARD_TOKENS` tokens (one piece is never cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musegen.atomic import write_npz
from musegen.corpus.grouping import SPLITS

SHARD_TOKENS = 1 << 22  # ~8 MB of uint16 per shard


def shard_name(split: str, k: int) -> str:
    """The file name of shard ``k`` of ``split``."""
    return f"{split}-{k:04d}.npz"


def write_shards(folder: Path, records: Sequence[dict], arrays: dict[str, np.ndarray],
                 shard_tokens: int = SHARD_TOKENS) -> list[str]:
    """Write the pieces of ``records`` (dicts with ``id``, ``split``, ``style_index``) into
    shards; sets ``rec["shard"]`` (``shards/<name>``) and ``rec["index"]`` (the piece's
    position in that shard). Shard files a previous build left and this one did not write
    are removed. Returns the written shard paths relative to the corpus folder.
    """
    written: list[str] = []
    for split in SPLITS:
        batch: list[dict] = []
        n_tokens = 0
        k = 0
        for rec in records:
            if rec["split"] != split:
                continue
            batch.append(rec)
            n_tokens += arrays[rec["id"]].size
            if n_tokens >= shard_tokens:
                written.append(_write_one(folder, split, k, batch, arrays))
                batch, n_tokens, k = [], 0, k + 1
        if batch or k == 0:
            written.append(_write_one(folder, split, k, batch, arrays))
    keep = {Path(w).name for w in written}
    for path in folder.glob("*.npz"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
    return written


def _write_one(folder: Path, split: str, k: int, batch: list[dict],
               arrays: dict[str, np.ndarray]) -> str:
    name = shard_name(split, k)
    pieces = [arrays[rec["id"]] for rec in batch]
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    if pieces:
        offsets[1:] = np.cumsum([p.size for p in pieces])
    tokens = (np.concatenate(pieces) if pieces else np.zeros(0)).astype(np.uint16)
    style = np.array([rec["style_index"] for rec in batch], dtype=np.int16)
    write_npz(folder / name, tokens=tokens, offsets=offsets, style=style)
    for index, rec in enumerate(batch):
        rec["shard"] = f"shards/{name}"
        rec["index"] = index
    return f"shards/{name}"


def read_shard(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(tokens, offsets, style)`` of one shard file."""
    with np.load(path, allow_pickle=False) as z:
        return z["tokens"], z["offsets"], z["style"]
