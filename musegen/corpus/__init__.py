"""The training corpus: music21's bundled collections (or your MIDI folders) as token shards.

    from musegen.corpus import build_corpus, default_corpus_dir, Corpus
    summary = build_corpus(default_corpus_dir(), on_progress=lambda d, t, m: ...)
    train = Corpus.open(default_corpus_dir()).split("train")   # [(style index, ids), ...]

Where things are: ``styles`` (which files make which style), ``abc`` and ``sources`` (files
→ MIDI), ``m21midi`` (music21 score → MIDI), ``encode`` (MIDI → tokens), ``grouping``
(variants and splits), ``shards`` (the files on disk), ``build`` (the pipeline),
``dataset`` (reading it back), ``report`` (rich tables for the CLI).
"""

from __future__ import annotations

from musegen.corpus.build import CorpusSummary, build_corpus, default_corpus_dir
from musegen.corpus.dataset import Corpus
from musegen.corpus.styles import STYLES, Style, default_styles, get_style

__all__ = [
    "STYLES",
    "Corpus",
    "CorpusSummary",
    "Style",
    "build_corpus",
    "default_corpus_dir",
    "default_styles",
    "get_style",
]
