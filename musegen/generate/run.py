"""The generation run: a loaded model (`Engine`) sampling the rows of one request, drawing
again the rows a check rejects, and turning each row into a `Take`.

    >>> engine = Engine(model_dir)                         # what `Studio` holds
    >>> vecs, styles = engine.style_rows("irish-dance", n=4)
    >>> rows = engine.run(prompt, state, forced, vecs, sp, seed=7, n=4, bars_n=8, build=build)
    >>> takes = [engine.take("continue", r, params, None, (0, 8)) for r in rows]

Every operation (`Studio.continue_` / `regenerate` / `blend` / `morph`,
`musegen.lyrics.melody.melody_for`) builds its prompt, grammar state and forced tokens, then
calls `Engine.run`; a row whose take copies more than `max_copy` notes from a training piece,
or nearly repeats an earlier take of the same region, is drawn again with a new seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musegen.clip import Clip, Note, parse_key
from musegen.errors import ParameterError
from musegen.generate import fast, voices
from musegen.generate.constraints import KeptVoices
from musegen.generate.decode import Decoder, DecodeWeights
from musegen.generate.filters import scale_pitch_classes
from musegen.generate.sampler import SampleParams, SampleResult, sample
from musegen.model import key_row, load_checkpoint, pick_device
from musegen.novelty import Novelty, NoveltyIndex
from musegen.params import MAX_COPY, check_style_weight
from musegen.priors import StylePriors
from musegen.take import DRUMS_UNTRAINED, StyleInfo, Take
from musegen.tokenizer import Tokenizer
from musegen.tokenizer.grammar import GrammarState

MAX_ATTEMPTS = 4  # draws per take when max_copy or the no-repeat check rejects one
RESEED = 7919  # a re-drawn row's seed: its seed + RESEED * attempt


@dataclass
class Row:
    """One sampled row of a request: its tokens, the clip they build, and how it was judged."""

    gen: np.ndarray
    clip: Clip
    novelty: Novelty | None
    seed: int
    attempt: int  # 0: the first draw; k: drawn again k times
    flags: list[str]  # the checks it still fails (after the last attempt)
    res: SampleResult


class Engine:
    """A music model loaded once, ready to generate: the model, its tokenizer, its styles and
    novelty index, and the device and CPU threads it decodes with (`musegen.studio.Studio`
    documents `threads`)."""

    def __init__(self, model_dir: Path, device: str | None = None, threads: int | None = None,
                 backend: str | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.device = pick_device(device)
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._backend = fast.resolve(backend, self.device)  # "torch", "onnx", or "auto": probed
        self.model, self.meta = load_checkpoint(self.model_dir, self.device)
        self.tok = Tokenizer.load(self.model_dir)
        self.style_records: list[dict] = json.loads((self.model_dir / "styles.json").read_text())
        digest = hashlib.sha1((self.model_dir / "model.safetensors").read_bytes()).hexdigest()
        self.model_id = f"{self.model_dir.name}@{digest[:10]}"
        self.priors = StylePriors.load(self.model_dir)  # each style's real keys and tempi
        self.voice_data = voices.load(self.model_dir)  # each style's ensemble, measured
        self.novelty_index: NoveltyIndex | None = None
        idx_path = self.model_dir / "novelty.npz"
        if idx_path.exists():
            self.novelty_index = NoveltyIndex.load(idx_path)

    @property
    def backend(self) -> str:
        """"torch" or "onnx": what this engine decodes with. "auto" is settled here on first
        use by `fast.choose` (the faster of the two on this CPU, measured once and cached)."""
        if self._backend == "auto":
            self._backend = fast.choose(DecodeWeights.of(self.model), self.threads)
        return self._backend

    def decoder(self) -> Callable:
        """What the sampler decodes with: the torch Decoder, or the fast path's (its ONNX
        Runtime session made on first use, its graph built once per model and cached)."""
        if self.backend == "torch":
            return Decoder
        return fast.decoder_factory(DecodeWeights.of(self.model), self.threads)

    def warm(self) -> None:
        """Make the decoder now (the fast path's session: ~0.2 s idle, more on a busy CPU; with
        "auto" on a CPU not seen before, the ~1 s probe too), so the first request does not
        wait for it (the OSC server calls this at start)."""
        self.decoder()

    @property
    def cpu_threads(self) -> int | None:
        """The torch CPU threads to decode with, or None off the CPU."""
        return self.threads if self.device.type == "cpu" else None

    # ----------------------------------------------------------------- styles
    @property
    def style_names(self) -> list[str]:
        return list(self.model.cfg.style_names)

    @property
    def styles(self) -> list[StyleInfo]:
        table = self.model.styles.weight.detach().cpu().numpy()
        by_name = {s["name"]: s for s in self.style_records}
        out = []
        for i, name in enumerate(self.model.cfg.style_names):
            rec = by_name.get(name, {})
            pieces = rec.get("pieces", 0)
            if isinstance(pieces, dict):
                pieces = sum(pieces.values())
            out.append(StyleInfo(name, rec.get("description", ""), i, int(pieces), table[i + 1]))
        return out

    def style_index(self, name: str) -> int:
        names = self.style_names
        if name not in names:
            raise ParameterError(f"unknown style {name!r}; known: {', '.join(names)}")
        return names.index(name)

    def style_vector(self, styles: str | dict[str, float] | None, *, slerp: bool = False
                     ) -> torch.Tensor:
        """The style vector of a name, a {name: weight} mix, or None / "none" (no style)."""
        if styles is None or styles == "none":
            return self.model.styles.null.detach()
        if isinstance(styles, str):
            styles = {styles: 1.0}
        if not styles:
            raise ParameterError("styles: give at least one style with a weight")
        weights = {}
        for name, w in styles.items():
            weights[self.style_index(name)] = check_style_weight(name, w)
        try:
            return self.model.styles.mix(weights, slerp=slerp).detach()
        except ValueError as e:
            raise ParameterError(str(e)) from None

    def style_rows(self, style: object, n: int, *, slerp: bool = False
                   ) -> tuple[torch.Tensor, dict[str, float] | None]:
        """(one style vector per row, the `styles` a take records). A list gives one mix per
        row (morph: the takes record their own mix); anything else is one style for all rows."""
        if isinstance(style, list):
            return torch.stack([self.style_vector(s) for s in style]), None
        vecs = self.style_vector(style, slerp=slerp).expand(n, -1)  # type: ignore[arg-type]
        if isinstance(style, str):
            return vecs, ({style: 1.0} if style != "none" else None)
        return vecs, style  # type: ignore[return-value]

    def keyed(self, vecs: torch.Tensor, sp: SampleParams, n: int) -> torch.Tensor:
        """The rows' style vectors plus, for a model told the key (`MusegenConfig.n_keys`), each
        row's key vector: the request's key (the key lock, else the prompt's estimate) or, from
        nothing, the key drawn for the row (`PhraseParams.key_of`); unknown without one."""
        if self.model.keys is None:
            return vecs
        phrase = sp.phrase
        rows = [key_row(phrase.key_of(i) if phrase is not None else None) for i in range(n)]
        with torch.no_grad():
            keys = self.model.key_vectors(torch.tensor(rows, device=self.model.keys.weight.device))
        return vecs + keys.to(vecs.device, vecs.dtype)

    # ------------------------------------------------------------------- runs
    def run(self, prompt: np.ndarray, state: GrammarState, forced: list[int], vecs: torch.Tensor,
            sp: SampleParams, *, seed: int, n: int, bars_n: int, build: Callable[[np.ndarray], Clip],
            earlier: list[list[int]] | None = None, template: list[int] | None = None,
            max_copy: int | None = None, kept: KeptVoices | None = None,
            judged: Callable[[Clip], Clip] | None = None,
            on_progress: Callable[[float], None] | None = None,
            cancelled: Callable[[], bool] | None = None,
            on_bars: Callable[[TakeNotes], None] | None = None,
            partial: Callable[[np.ndarray, int], Clip] | None = None, related: bool = False) -> list[Row]:
        """Sample `n` rows (row i seeded `seed + i`) of `bars_n` bars after `prompt`. Rows whose
        take copies more than `max_copy` notes from a training piece, or nearly repeats an
        earlier take of the same region (`earlier`; not with a `template`), are drawn again
        with new seeds (up to `MAX_ATTEMPTS` times; a row still failing then says so in its
        `flags`). `build` turns a row's tokens into its clip; `judged(clip)` is the part of it
        the novelty check reads (arrange: the added voices, not the musician's).

        `on_bars` streams the takes while they are drawn (`TakeNotes`): each take's notes as
        its bars are decoded (`partial(tokens, k)`: the clip of a row's first k bars; without
        it, a take's notes come when it is complete), the rest when it is judged, every note
        of every take exactly once (a redrawn take starts again with `restart`).

        `related` (morph steps): every row draws with the same seed and may come close to the
        others."""
        earlier = [] if earlier is None else earlier
        vecs = self.keyed(vecs, sp, n)
        rows: list[Row | None] = [None] * n
        todo = list(range(n))
        live = _Live(on_bars, partial, self.tok.vocab.bar) if on_bars is not None else None
        for attempt in range(MAX_ATTEMPTS):
            seeds = [seed + (0 if related else i) + RESEED * attempt for i in todo]
            with torch_threads(self.cpu_threads):
                res = sample(self.model, self.tok, prompt, state, vecs[todo].to(self.device), bars_n,
                             seeds, sp, forced=forced, earlier=earlier, template=template, kept=kept,
                             on_progress=on_progress, cancelled=cancelled,
                             make_decoder=self.decoder(),
                             on_bar=live.hook(todo) if live is not None else None)
            drawn, todo = todo, self._judge(rows, todo, res, seeds, attempt, build, earlier=earlier,
                                            template=template, max_copy=max_copy, related=related,
                                            judged=judged)
            last = not todo or attempt == MAX_ATTEMPTS - 1
            if live is not None:
                for i in drawn:
                    if last or i not in todo:
                        live.finish(i, rows[i].clip)  # type: ignore[union-attr]
                    else:
                        live.redraw(i)
            if not todo:
                break
        return [r for r in rows if r is not None]

    def _judge(self, rows: list[Row | None], todo: list[int], res: SampleResult, seeds: list[int],
               attempt: int, build: Callable[[np.ndarray], Clip], *, earlier: list[list[int]],
               template: list[int] | None, max_copy: int | None, related: bool = False,
               judged: Callable[[Clip], Clip] | None = None) -> list[int]:
        """Set `rows[i]` for each row i of `todo` (drawn as `res`, row k of it with `seeds[k]`);
        returns the rows to draw again: those a check flags."""
        accepted = [] if related else [list(r.gen) for r in rows if r is not None]
        retry = []
        for k, i in enumerate(todo):
            gen = res.tokens[k]
            clip = build(gen)
            nov = None
            if self.novelty_index is not None:
                nov = self.novelty_index.check(judged(clip) if judged is not None else clip)
            flags = _row_flags(gen, nov, max_copy=max_copy, template=template, earlier=earlier,
                              accepted=accepted)
            rows[i] = Row(gen, clip, nov, seeds[k], attempt, flags, res)
            if flags:
                retry.append(i)
            elif not related:
                accepted.append(list(gen))
        return retry

    def take(self, op: str, row: Row, params: dict, parent: str | None,
             bars: tuple[int, int]) -> Take:
        """The Take of a row: `params` as the request checked them (its `seed` recorded as
        `request_seed`; the take's own seed is the row's), with the row's warnings."""
        p = {k: v for k, v in params.items() if k != "seed"}
        p["request_seed"] = params["seed"]
        if row.attempt:
            p["resampled"] = row.attempt
        flags = list(row.flags)
        if any(t.is_drum for t in row.clip.tracks) and not self.meta.get("drums", False):
            flags.append(DRUMS_UNTRAINED)  # the shipped model's corpus has no drums
        if flags:
            p["warnings"] = flags
        return Take(clip=row.clip, operation=op, params=p, seed=row.seed, model_id=self.model_id,
                    novelty=row.novelty, parent=parent, bars=bars, seconds=row.res.seconds,
                    first_bar_s=row.res.first_bar_s, tokens=tuple(int(t) for t in row.gen))


@dataclass(frozen=True)
class TakeNotes:
    """Newly decoded notes of one take of a running request (`Engine.run`'s `on_bars`).

    `notes` are (track index, note) pairs not sent before for this take, by onset; `clip` is
    the take so far (its first `bars` whole bars, and the notes of the bar being decoded
    that have ended inside it; the whole take when `final`). `restart`:
    the take is being drawn again (a check rejected the first draw): drop the notes sent for
    it before. Over a request, the notes of a take's events are exactly its final clip's."""

    take: int  # the take's index in the request, 0-based
    notes: tuple[tuple[int, Note], ...]
    bars: int
    clip: Clip
    restart: bool = False
    final: bool = False


class _Live:
    """Streams a request's takes as `TakeNotes` (see `Engine.run`)."""

    def __init__(self, send: Callable[[TakeNotes], None], partial: Callable[[np.ndarray, int], Clip] | None,
                 bar: int) -> None:
        self.send, self.partial, self.bar = send, partial, bar
        self.sent: dict[int, set] = {}  # take -> keys of its notes sent
        self.restart: set[int] = set()

    def hook(self, todo: list[int]) -> Callable[[int, list[int]], None] | None:
        """The sampler's `on_bar` for a batch whose row k is take todo[k]: at each BAR, the bar
        it closes; before a take has sent anything, at each note's DURATION too, so a host
        hears each take's first note as soon as it is drawn. (Not every note: decoding a
        partial take reads the prompt too, ~12 ms for a chorale here, 15 % of a request if
        done four times a second per take.)"""
        if self.partial is None:
            return None

        def on_bar(k: int, tokens: list[int]) -> None:
            i = todo[k]
            at_bar = tokens[-1] == self.bar
            if not at_bar and self.sent.get(i):  # a note after the take's first: nothing to do
                return
            begun = sum(1 for t in tokens if t == self.bar)  # the first BAR opens bar 1
            if at_bar:
                if begun >= 2:
                    self._emit(i, self.partial(np.asarray(tokens[:-1], dtype=np.int64), begun - 1),  # type: ignore[misc]
                               begun - 1, final=False)
            elif begun >= 1:
                self._emit(i, self.partial(np.asarray(tokens, dtype=np.int64), begun),  # type: ignore[misc]
                           begun - 1, final=False, only_if_new=True)
        return on_bar

    def redraw(self, i: int) -> None:
        if i in self.sent:
            self.restart.add(i)
            del self.sent[i]

    def finish(self, i: int, clip: Clip) -> None:
        self._emit(i, clip, clip.n_bars, final=True)

    def _emit(self, i: int, clip: Clip, bars: int, *, final: bool, only_if_new: bool = False) -> None:
        sent = self.sent.setdefault(i, set())
        new = []
        for ti, t in enumerate(clip.tracks):
            for n in t.notes:
                # a note reaching the end of a partial clip may be cut there: it comes later
                key = (ti, n.start_tick, n.pitch, n.velocity, n.duration_ticks, n.lyric)
                if key not in sent and (final or n.end_tick < clip.length_ticks):
                    sent.add(key)
                    new.append((ti, n))
        new.sort(key=lambda x: (x[1].start_tick, x[0], x[1].pitch))
        if only_if_new and not new:
            return
        restart = i in self.restart
        self.restart.discard(i)
        self.send(TakeNotes(i, tuple(new), bars, clip, restart=restart, final=final))


def sample_params(given: Mapping[str, object], *, bars: int, variations: int
                  ) -> tuple[dict, SampleParams]:
    """A request's parameters as `musegen.params.check` returned them -> (the params its takes
    record, the sampler's). The seed is drawn from the clock when not given."""
    t = float(given.get("temperature", 1.0))  # type: ignore[arg-type]
    p = float(given.get("top_p", 0.95))  # type: ignore[arg-type]
    g = float(given.get("style_strength", 1.0))  # type: ignore[arg-type]
    pcs = None
    if given.get("key") is not None or given.get("scale") is not None:
        tonic, mode = parse_key(str(given.get("key") or "C major"))
        mode = str(given.get("scale") or mode)
        pcs = frozenset(scale_pitch_classes(tonic, mode))
    pr = given.get("pitch_range")
    dens = given.get("density")
    leap = given.get("max_leap")
    tracks = given.get("tracks")
    tracks = frozenset(tracks) if tracks is not None else None  # type: ignore[arg-type]
    seed = given.get("seed")
    if seed is None:
        seed = int(time.time_ns() % 2**31)
    params = {"bars": bars, "variations": variations, "temperature": t, "top_p": p,
              "style_strength": g, "key": given.get("key"), "scale": given.get("scale"),
              "pitch_range": list(pr) if pr else None, "density": dens,  # type: ignore[call-overload]
              "tracks": sorted(tracks) if tracks else None, "seed": seed,
              "max_copy": given.get("max_copy", MAX_COPY), "keep_rhythm": bool(given.get("keep_rhythm", False)),
              "max_leap": leap, "voice_leading": str(given.get("voice_leading", "auto"))}
    sp = SampleParams(temperature=t, top_p=p, style_strength=g, pitch_classes=pcs,
                      pitch_range=pr, density=dens, tracks=tracks, max_leap=leap)  # type: ignore[arg-type]
    return params, sp


def _row_flags(gen: np.ndarray, nov: Novelty | None, *, max_copy: int | None, template: list[int] | None,
              earlier: list[list[int]], accepted: list[list[int]]) -> list[str]:
    """The checks a drawn row fails: copying more than `max_copy` notes from a training piece,
    or (without a `template`) nearly repeating an `earlier` take or a row already accepted."""
    flags = []
    if max_copy is not None and nov is not None and nov.longest_run > max_copy:
        flags.append("copies_more_than_max_copy")
    if template is None and too_close(gen, list(earlier) + accepted):
        flags.append("near_duplicate_of_earlier")
    return flags


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with `n` torch CPU threads, restoring the previous count after."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def too_close(gen: np.ndarray, earlier: Sequence[Sequence[int]], threshold: float = 0.95) -> bool:
    """Near-identical: at least `threshold` of the tokens equal position by position."""
    g = list(gen)
    for e in earlier:
        n = max(len(g), len(e))
        same = sum(1 for x, y in zip(g, e) if x == y)
        if n and same / n >= threshold:
            return True
    return False


__all__ = ["MAX_ATTEMPTS", "Engine", "Row", "TakeNotes", "sample_params",
           "too_close", "torch_threads"]
