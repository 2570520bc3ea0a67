"""Reading a built corpus for training: ``Corpus.open(out_dir).split("train")``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from musegen.corpus.grouping import SPLITS
from musegen.corpus.shards import read_shard
from musegen.errors import ParameterError


class NoCorpusError(ParameterError, FileNotFoundError):
    """A folder given as a corpus holds no finished build (the message names the folder)."""


class Corpus:
    """A corpus folder written by :func:`musegen.corpus.build_corpus`.

    ``styles`` is the list of style dicts of ``styles.json`` (``name``, ``description``,
    ``index``, piece counts); a piece's style index points into it.
    """

    def __init__(self, root: Path, styles: list[dict], summary: dict) -> None:
        self.root = Path(root)
        self.styles = styles
        self.summary = summary
        self._splits: dict[str, list[tuple[int, np.ndarray]]] = {}

    @classmethod
    def open(cls, out_dir: Path) -> Corpus:
        """Open a finished build; raises :class:`NoCorpusError` (a ``FileNotFoundError``)
        if there is none in ``out_dir`` (``summary.json`` is written last, so a half-built
        corpus has none)."""
        root = Path(out_dir)
        summary_path = root / "summary.json"
        if not summary_path.is_file():
            raise NoCorpusError(f"{root}: no finished corpus here (summary.json is "
                                f"missing); build one with `musegen corpus build`")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        styles = json.loads((root / "styles.json").read_text(encoding="utf-8"))
        return cls(root, styles, summary)

    @property
    def style_names(self) -> list[str]:
        """Style names in index order."""
        return [s["name"] for s in sorted(self.styles, key=lambda s: s["index"])]

    def shard_paths(self, name: str) -> list[Path]:
        """The shard files of split ``name``, in order."""
        if name not in SPLITS:
            raise ParameterError(f"split must be one of {', '.join(SPLITS)}, not {name!r}")
        listed = self.summary.get("shards") or [
            f"shards/{p.name}" for p in sorted((self.root / "shards").glob(f"{name}-*.npz"))]
        return [self.root / s for s in listed if Path(s).name.startswith(f"{name}-")]

    def split(self, name: str) -> list[tuple[int, np.ndarray]]:
        """``(style index, token ids)`` of every piece in split ``name`` (cached).

        The token arrays are views into each shard's concatenated uint16 array.
        """
        if name not in self._splits:
            pieces: list[tuple[int, np.ndarray]] = []
            for path in self.shard_paths(name):
                tokens, offsets, style = read_shard(path)
                for i in range(len(style)):
                    pieces.append((int(style[i]), tokens[offsets[i]:offsets[i + 1]]))
            self._splits[name] = pieces
        return self._splits[name]

    def pieces(self) -> list[dict]:
        """The records of ``pieces.jsonl``: id, source, style, split, group, counts, shard."""
        with open(self.root / "pieces.jsonl", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def tokenizer(self) -> object:
        """The :class:`~musegen.tokenizer.Tokenizer` the corpus was encoded with."""
        from musegen.tokenizer import Tokenizer

        return Tokenizer.load(self.root / "tokenizer")

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r}, styles={self.style_names})"
