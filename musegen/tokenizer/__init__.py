"""The MIDI tokenizer: musegen-REMI tokens, its grammar, and save/load with versions.

`Tokenizer` is a thin facade over the pure functions in `codec` and the state machine in
`grammar`; see `vocab` for the language itself and docs/design.md for why musegen writes its
own REMI variant instead of using MidiTok's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from musegen.clip import Clip, atomic_write_bytes
from musegen.errors import TokenizeError
from musegen.tokenizer import codec
from musegen.tokenizer.grammar import Grammar, GrammarState
from musegen.tokenizer.vocab import DRUM_PROGRAM, Vocab

FORMAT = "musegen-remi"
FORMAT_VERSION = 1


class Tokenizer:
    """Clip <-> token ids. `encode` snaps to the grid that `quantize` describes."""

    def __init__(self, vocab: Vocab | None = None) -> None:
        self.vocab = vocab or Vocab()
        self.grammar = Grammar(self.vocab)

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def quantize(self, clip: Clip) -> Clip:
        """The clip as the token grid can hold it (what `decode(encode(clip))` returns)."""
        return codec.to_clip(codec.quantize(clip, self.vocab), self.vocab, name=clip.name)

    def encode(self, clip: Clip, *, eos: bool = True) -> np.ndarray:
        return codec.serialize(codec.quantize(clip, self.vocab), self.vocab, eos=eos)

    def decode(self, ids: np.ndarray | list[int], *, name: str = "") -> Clip:
        return codec.to_clip(codec.parse(ids, self.vocab), self.vocab, name=name)

    def validate(self, ids: np.ndarray | list[int], *, fim: bool = False) -> GrammarState:
        return self.grammar.validate(ids, fim=fim)

    # ------------------------------------------------------------ token ops
    def bar_offsets(self, ids: np.ndarray) -> np.ndarray:
        """Index of every BAR token."""
        return np.flatnonzero(np.asarray(ids) == self.vocab.bar)

    def header(self, ids: np.ndarray) -> np.ndarray:
        """BOS and the track declarations: everything before the first BAR."""
        bars = self.bar_offsets(ids)
        return np.asarray(ids[: bars[0] if len(bars) else len(ids)])

    def count_notes(self, ids: np.ndarray) -> int:
        r = self.vocab.ranges["pitch"]
        a = np.asarray(ids)
        return int(((a >= r.start) & (a < r.stop)).sum())

    def context_at(self, ids: np.ndarray, index: int) -> list[int]:
        """TIMESIG and TEMPO tokens in force at `index` (to restart a sequence there)."""
        a = np.asarray(ids[:index])
        out = []
        for kind in ("timesig", "tempo"):
            r = self.vocab.ranges[kind]
            hits = np.flatnonzero((a >= r.start) & (a < r.stop))
            if len(hits):
                out.append(int(a[hits[-1]]))
        return out

    def restart_at_bar(self, ids: np.ndarray, bar: int) -> np.ndarray:
        """Header + the tokens from bar `bar` (0-based) on, with the time signature and tempo in
        force there written explicitly after its BAR, so the result decodes on its own."""
        a = np.asarray(ids)
        bars = self.bar_offsets(a)
        if not 0 <= bar < len(bars):
            raise TokenizeError(f"bar {bar} outside the sequence's {len(bars)} bars")
        start = int(bars[bar])
        rest = a[start + 1:]
        r = self.vocab.ranges
        own = []  # the TIMESIG / TEMPO this bar already carries
        while len(own) < len(rest) and self.vocab.kind(int(rest[len(own)])) in ("timesig", "tempo"):
            own.append(int(rest[len(own)]))
        ctx = self.context_at(a, start)
        sig = [t for t in own if t in r["timesig"]] or [t for t in ctx if t in r["timesig"]]
        tempo = [t for t in own if t in r["tempo"]] or [t for t in ctx if t in r["tempo"]]
        return np.concatenate([self.header(a), [self.vocab.bar], sig, tempo,
                               rest[len(own):]]).astype(a.dtype)

    def transpose(self, ids: np.ndarray, semitones: int) -> np.ndarray | None:
        """Pitched tracks shifted by `semitones`; None if a pitch would leave 0..127."""
        if semitones == 0:
            return ids
        v, a = self.vocab, np.asarray(ids).astype(np.int64)
        pr, tr, gr = v.ranges["pitch"], v.ranges["track"], v.ranges["program"]
        is_pitch = (a >= pr.start) & (a < pr.stop)
        head = self.header(a)
        progs = head[(head >= gr.start) & (head < gr.stop)] - gr.start
        if (progs == DRUM_PROGRAM).any():
            # the current track (reset to 0 at BAR) decides which pitches are drums
            is_track = (a >= tr.start) & (a < tr.stop)
            cur = np.where(is_track, a - tr.start, -1)
            cur[: len(head)] = -1
            cur[a == v.bar] = 0
            idx = np.where(cur >= 0, np.arange(len(a)), 0)
            np.maximum.accumulate(idx, out=idx)
            track_of = cur[idx].clip(0)
            drum_tracks = np.flatnonzero(progs == DRUM_PROGRAM)
            is_pitch &= ~np.isin(track_of, drum_tracks)
        moved = a[is_pitch] + semitones
        if len(moved) and (moved.min() < pr.start or moved.max() >= pr.stop):
            return None
        out = a.copy()
        out[is_pitch] = moved
        return out.astype(np.asarray(ids).dtype)

    # ------------------------------------------------------------ save/load
    def to_dict(self) -> dict:
        from importlib.metadata import version

        import musegen

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vocab": self.vocab.to_dict(),
            "versions": {"musegen": musegen.__version__, "symusic": version("symusic"),
                         "numpy": np.__version__},
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        path = Path(directory) / "tokenizer.json"
        atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1).encode())
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Tokenizer:
        path = Path(directory)
        if path.is_dir():
            path = path / "tokenizer.json"
        d = json.loads(path.read_text())
        if d.get("format") != FORMAT or d.get("format_version", 0) > FORMAT_VERSION:
            raise TokenizeError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} tokenizer")
        return cls(Vocab.from_dict(d["vocab"]))


__all__ = ["Tokenizer", "Vocab", "Grammar", "GrammarState", "TokenizeError"]
