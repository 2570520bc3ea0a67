"""The MIDI tokenizer: musegen-REMI tokens, its grammar, and save/load with versions.

`Tokenizer` is a thin facade over the pure functions in `codec` and the state machine in
`grammar`; see `vocab` for the language itself and docs/design.md for why musegen writes its
own REMI variant instead of using MidiTok's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from musegen.atomic import write_bytes
from musegen.clip import Clip
from musegen.errors import TokenizeError
from musegen.tokenizer import codec
from musegen.tokenizer.grammar import Grammar, GrammarState
from musegen.tokenizer.vocab import DRUM_PROGRAM, Vocab

FORMAT = "musegen-remi"
FORMAT_VERSION = 1


class Infill:
    """A fill-in-the-middle prompt (`Tokenizer.infill_prompt`): `ids` is what the model reads;
    `whole(middle)` is the plain sequence with a generated middle put back, to decode."""

    def __init__(self, ids: np.ndarray, head: np.ndarray, pre: np.ndarray, suf: np.ndarray,
                 eos: int) -> None:
        self.ids, self.head, self.pre, self.suf, self._eos = ids, head, pre, suf, eos

    def whole(self, middle: np.ndarray) -> np.ndarray:
        return np.concatenate([self.head, self.pre, middle, self.suf, [self._eos]])


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

    def encode(self, clip: Clip, *, eos: bool = True, bars: tuple[int, int] | None = None,
               cancelled: Callable[[], bool] | None = None) -> np.ndarray:
        """Clip -> ids. `bars=(first, end)`: only bars first..end-1 (0-based), the first
        restating the time signature and tempo in force: the tokens of
        `restart_at_bar(encode(clip), first)` before bar `end`, at the cost of those bars
        alone. `cancelled()` true stops a long encode with InterruptedError."""
        q = codec.quantize(clip, self.vocab, bars=bars, cancelled=cancelled)
        return codec.serialize(q, self.vocab, eos=eos, cancelled=cancelled)

    def encode_tail(self, clip: Clip, tokens: int, *, eos: bool = True, latest: int | None = None,
                    cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, int]:
        """The clip's last bars: as few as hold at least `tokens` tokens after the first of
        them (all bars when the clip is shorter), starting at bar `latest` or before, as
        `(encode(clip, bars=(first, n)), first)`. A model shown at most `tokens` tokens
        before what it generates sees the same from these as from the whole clip; only the
        notes of these bars are encoded."""
        n = clip.n_bars
        latest = n if latest is None else max(0, min(n, latest))
        k = max(4, n - latest)
        while True:
            first = max(0, n - k)
            ids = self.encode(clip, eos=False, bars=(first, n), cancelled=cancelled)
            offs = self.bar_offsets(ids)
            # the last bar r (at most `latest`) whose following bars hold `tokens` tokens
            fits = np.flatnonzero(len(ids) - offs[1:] >= tokens)
            fits = fits[first + fits <= latest]
            if len(fits) or first == 0:
                r = int(fits[-1]) if len(fits) else 0
                out = self.restart_at_bar(ids, r) if r else ids
                return (np.append(out, self.vocab.eos).astype(ids.dtype) if eos else out), first + r
            k *= 2

    def encode_around(self, clip: Clip, first: int, end: int, tokens: int, *,
                      cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, int, int]:
        """Bars first..end-1 (0-based) and as many bars on either side (one before, one after,
        in turn) as keep the infilling prompt `head before FILL after FILL_START BAR sig tempo`
        within `tokens` tokens: `(encode(clip, bars=(lo, hi), eos=False), lo, hi)`. When the
        whole clip fits, that is the whole clip."""
        n, k = clip.n_bars, 4
        if not 0 <= first < end <= n:
            raise TokenizeError(f"bars {first}..{end} outside the clip's 0..{n}")
        while True:
            lo0, hi0 = max(0, first - k), min(n, end + k)
            ids = self.encode(clip, eos=False, bars=(lo0, hi0), cancelled=cancelled)
            offs = [int(x) for x in self.bar_offsets(ids)] + [len(ids)]
            i, j = self._grow(ids, offs, first - lo0, end - lo0, tokens)
            if (i > 0 or lo0 == 0) and (j < len(offs) - 1 or hi0 == n):
                window = ids[:offs[j]]
                return (self.restart_at_bar(window, i) if i else window), lo0 + i, min(n, lo0 + j)
            k *= 2  # the budget reaches past the bars encoded: encode more

    def _grow(self, ids: np.ndarray, offs: list[int], a: int, b: int, tokens: int
              ) -> tuple[int, int]:
        """Bars i..j-1 of `ids` (bar starts `offs`, then its length) around bars a..b-1: grown
        one bar before, one after, in turn, while the prompt still fits in `tokens`."""
        head = len(self.header(ids))

        def cost(i: int, j: int) -> int:  # the prompt's length for bars i..j-1
            pre = offs[a] - offs[i] + (self._restated(ids, offs[i]) if i else 0)
            suf = offs[j] - offs[b] + (self._restated(ids, offs[b]) if j > b else 0)
            return head + pre + 1 + suf + 1 + 3  # FILL, FILL_START, BAR sig tempo

        i, j, grew = a, b, True
        while grew:
            grew = False
            if i > 0 and cost(i - 1, j) <= tokens:
                i, grew = i - 1, True
            if j < len(offs) - 1 and cost(i, j + 1) <= tokens:
                j, grew = j + 1, True
        return i, j

    def _restated(self, ids: np.ndarray, bar_at: int) -> int:
        """Tokens a restart at the BAR at `bar_at` adds: the time signature and tempo it does
        not state itself."""
        own = 0
        while bar_at + 1 + own < len(ids) and \
                self.vocab.kind(int(ids[bar_at + 1 + own])) in ("timesig", "tempo"):
            own += 1
        return 2 - own

    def decode(self, ids: np.ndarray | list[int], *, name: str = "") -> Clip:
        return codec.to_clip(codec.parse(ids, self.vocab), self.vocab, name=name)

    def validate(self, ids: np.ndarray | list[int], *, fim: bool = False,
                 cancelled: Callable[[], bool] | None = None) -> GrammarState:
        return self.grammar.validate(ids, fim=fim, cancelled=cancelled)

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

    def bar_tokens(self, ids: np.ndarray, first: int, end: int) -> tuple[list[int], list[int]]:
        """Bars first..end-1 (0-based) as a generation writes them, split in two: the tokens it
        is forced to start with (BAR and the time signature and tempo in force there) and the
        rest (a keep-rhythm or melody template)."""
        a = np.asarray(ids)
        body = a[:-1] if len(a) and int(a[-1]) == self.vocab.eos else a
        starts = self.bar_offsets(body)
        stop = int(starts[end]) if end < len(starts) else len(body)
        toks = [int(t) for t in self.restart_at_bar(body[:stop], first)[len(self.header(body)):]]
        n = 1
        while n < len(toks) and self.vocab.kind(toks[n]) in ("timesig", "tempo"):
            n += 1
        return toks[:n], toks[n:]

    def infill_prompt(self, ids: np.ndarray, first: int, end: int) -> Infill:
        """The fill-in-the-middle prompt that regenerates bars first..end-1 (0-based):
        `header prefix FILL suffix FILL_START`, with what puts a generated middle back."""
        v = self.vocab
        a = np.asarray(ids)
        body = a[:-1] if len(a) and int(a[-1]) == v.eos else a
        starts, head = self.bar_offsets(body), self.header(body)
        pre = body[starts[0]: starts[first]]
        suf = self.restart_at_bar(body, end)[len(head):] if end < len(starts) else body[:0]
        prompt = np.concatenate([head, pre, [v.fill], suf, [v.fill_start]]).astype(np.int64)
        return Infill(prompt, head, pre, suf, v.eos)

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

        from musegen.version import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vocab": self.vocab.to_dict(),
            "versions": {"musegen": __version__, "symusic": version("symusic"),
                         "numpy": np.__version__},
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        path = Path(directory) / "tokenizer.json"
        write_bytes(path, json.dumps(self.to_dict(), indent=1).encode())
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
