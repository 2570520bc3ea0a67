"""`Studio`: the musician-facing API. Every result is a `Take`.

    >>> import musegen
    >>> studio = musegen.Studio()                       # the shipped default model
    >>> takes = studio.continue_(musegen.Clip.load("tune.mid"), bars=8, style="irish-dance")
    >>> takes[0].save("take1.mid")                      # MIDI + a JSON sidecar
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from musegen.atomic import write_bytes as atomic_write_bytes
from musegen.carry import carry, splice
from musegen.clip import Clip, parse_key
from musegen.errors import ParameterError
from musegen.generate.filters import scale_pitch_classes
from musegen.generate.sampler import SampleParams, SampleResult, sample
from musegen.model import load_checkpoint, pick_device
from musegen.tokenizer import Tokenizer

DEFAULT_MODEL_DIR = Path(__file__).parent / "models" / "default"
MAX_BARS = 256
MAX_VARIATIONS = 64
MAX_ATTEMPTS = 4  # draws per take when max_copy or the no-repeat check rejects one
# what a take built on a take inherits from it unless the call says otherwise (style too)
INHERITED = ("temperature", "top_p", "style_strength", "key", "scale", "pitch_range", "density",
             "max_leap", "max_copy")
_MUSIC_OPS = ("continue", "regenerate", "blend", "morph", "melody_for")
DRUMS_UNTRAINED = "drums_untrained"  # warning: the model saw no drums (toms, ride, cowbell...)


def resolve_model_dir(model: str | Path | None) -> Path:
    """None or 'default' -> the shipped model; otherwise a folder that must exist."""
    if model is None or str(model) == "default":
        path = DEFAULT_MODEL_DIR
    else:
        path = Path(model).expanduser()
    if not (path / "musegen.json").exists():
        raise ParameterError(f"model {str(model)!r}: no musegen checkpoint at {path}")
    return path


@dataclass(frozen=True)
class StyleInfo:
    name: str
    description: str
    index: int
    pieces: int
    vector: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class Take:
    """One generated variation: the clip and everything needed to reproduce and judge it."""

    clip: Clip
    operation: str
    params: dict
    seed: int
    model_id: str
    novelty: object | None = None  # musegen.novelty.Novelty when the model ships an index
    parent: str | None = None
    bars: tuple[int, int] = (0, 0)  # the generated bar range inside `clip` (0-based, end excl.)
    seconds: float = 0.0  # wall time of the whole request (all its variations)
    first_bar_s: float = 0.0  # until every variation had finished its first bar
    tokens: tuple[int, ...] = field(default=(), repr=False, compare=False)

    @property
    def id(self) -> str:
        h = hashlib.sha1(json.dumps([self.operation, self.params, self.seed, self.model_id,
                                     self.parent], sort_keys=True, default=str).encode())
        return h.hexdigest()[:12]

    def __repr__(self) -> str:
        """One line for the REPL: `<Take continue 8 bars (1-8) 31 notes style=irish-dance
        seed=7 novelty=4 notes of 'piece' id=...>` (the full record is in `sidecar()`)."""
        styles = self.params.get("styles")
        if isinstance(styles, dict):
            style = "+".join(k if len(styles) == 1 else f"{k}={float(w):g}" for k, w in styles.items())
        else:
            style = "none" if styles is None else str(styles)
        if self.novelty is None:
            nov = "n/a"
        else:
            run, piece = getattr(self.novelty, "longest_run", 0), getattr(self.novelty, "piece", None)
            nov = f"{run} notes of {piece!r}" if piece else f"{run}"
        a, b = self.bars
        span = f" ({a + 1}-{b})" if b > a else ""
        return (f"<Take {self.operation} {self.clip.n_bars} bars{span} {self.clip.n_notes} notes "
                f"style={style} seed={self.seed} novelty={nov} id={self.id}>")

    def sidecar(self) -> dict:
        nov = None
        if self.novelty is not None:
            nov = {k: v for k, v in asdict(self.novelty).items()}
        return {"take_id": self.id, "operation": self.operation, "params": self.params,
                "seed": self.seed, "model_id": self.model_id, "parent": self.parent,
                "bars": list(self.bars), "n_bars": self.clip.n_bars, "n_notes": self.clip.n_notes,
                "novelty": nov, "seconds": round(self.seconds, 4)}

    def save(self, path: str | Path) -> Path:
        """Write the MIDI file and `<path>.json` beside it, both atomically."""
        p = Path(path)
        self.clip.save(p)
        atomic_write_bytes(p.with_suffix(".json"),
                           json.dumps(self.sidecar(), indent=1, default=str).encode())
        return p

    @classmethod
    def load(cls, path: str | Path) -> Take:
        """A take as `save` wrote it: the MIDI file and its `.json` sidecar (so building on it
        inherits its style and parameters). `ParameterError` if the sidecar is missing or
        unreadable; `MidiFileError` for the MIDI file."""
        p = Path(path)
        side = p.with_suffix(".json")
        try:
            rec = json.loads(side.read_text())
            params, op = dict(rec["params"]), str(rec["operation"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ParameterError(f"take sidecar {side}: unreadable ({type(e).__name__}: {e})") from None
        clip = Clip.load(p)
        bars = rec.get("bars") or (0, clip.n_bars)
        return cls(clip=clip, operation=op, params=params, seed=int(rec.get("seed") or 0),
                   model_id=str(rec.get("model_id") or ""), parent=rec.get("parent"),
                   bars=(int(bars[0]), int(bars[1])))

    def inherit(self, style: object, kw: dict) -> tuple[object, dict]:
        """The style and parameters a take built on this one uses: this take's, unless given
        (`style="none"` asks for no style). Returns (style, kw) with `inherited` noted in kw."""
        if self.operation not in _MUSIC_OPS:  # a lyrics take's temperature is the lyric model's
            return style, kw
        kw = dict(kw)
        names = [k for k in INHERITED if kw.get(k) is None and self.params.get(k) is not None]
        for k in names:
            kw[k] = tuple(self.params[k]) if k == "pitch_range" else self.params[k]
        styles = self.params.get("styles")
        if style is None and isinstance(styles, dict) and styles:
            style = next(iter(styles)) if list(styles.values()) == [1.0] else dict(styles)
            names.append("style")
        if names:
            kw["_inherited"] = names
        return style, kw


class Studio:
    """Loads a model folder once and generates takes from it."""

    def __init__(self, model: str | Path | None = None, device: str | None = None,
                 threads: int | None = None, lyric_model: str | Path | None = None) -> None:
        """`threads`: CPU threads for decoding; default all cores, at most 4. On an idle 2-core
        CPU two threads decode ~1.5x faster than one, but when another program keeps the
        cores busy a second thread mostly waits on the first (measured: 1.2 s with one thread
        vs 7.3 s with two for the same request on a fully loaded 2-core CPU), so pass
        `threads=1` (`--threads 1`) on a machine that is busy with other work."""
        self.model_dir = resolve_model_dir(model)
        self.device = pick_device(device)
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.model, self.meta = load_checkpoint(self.model_dir, self.device)
        self.model.fuse()
        self.tok = Tokenizer.load(self.model_dir)
        self._styles = json.loads((self.model_dir / "styles.json").read_text())
        digest = hashlib.sha1((self.model_dir / "model.safetensors").read_bytes()).hexdigest()
        self.model_id = f"{self.model_dir.name}@{digest[:10]}"
        self.novelty_index = None
        idx_path = self.model_dir / "novelty.npz"
        if idx_path.exists():
            from musegen.novelty import NoveltyIndex

            self.novelty_index = NoveltyIndex.load(idx_path)
        self._earlier: dict[str, list[list[int]]] = {}
        self._lyric_model_path = lyric_model
        self._lyric_lm = None  # loaded on first use (musegen.lyrics.lm.LyricLM)

    @property
    def lyric_lm(self) -> object:
        """The lyric language model (the shipped one, or `lyric_model=` any local Hugging Face
        causal LM folder), loaded on first use."""
        if self._lyric_lm is None:
            from musegen.lyrics.lm import LyricLM

            self._lyric_lm = LyricLM.load(self._lyric_model_path, device=self.device)
        return self._lyric_lm

    # ----------------------------------------------------------------- styles
    @property
    def style_names(self) -> list[str]:
        return list(self.model.cfg.style_names)

    @property
    def styles(self) -> list[StyleInfo]:
        table = self.model.styles.weight.detach().cpu().numpy()
        by_name = {s["name"]: s for s in self._styles}
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
        if styles is None or styles == "none":
            return self.model.styles.null.detach()
        if isinstance(styles, str):
            styles = {styles: 1.0}
        if not styles:
            raise ParameterError("styles: give at least one style with a weight")
        weights = {}
        for name, w in styles.items():
            if not isinstance(w, (int, float)) or not math.isfinite(w) or abs(w) > 10:
                raise ParameterError(f"style weight for {name!r} must be a number in -10..10, got {w!r}")
            weights[self.style_index(name)] = float(w)
        try:
            return self.model.styles.mix(weights, slerp=slerp).detach()
        except ValueError as e:
            raise ParameterError(str(e)) from None

    def style_map(self, path: str | Path) -> Path:
        """A labelled 2-D picture (PCA) of the style vectors, written as PNG."""
        from musegen.plots import style_map

        return style_map(self.styles, Path(path))

    # ------------------------------------------------------------- operations
    def continue_(self, clip: Clip | Take | None, bars: int = 8, variations: int = 4,
                  style: str | dict[str, float] | None = None, **kw: object) -> list[Take]:
        """Continue after the clip's last bar; each take holds the new bars only. Continuing a
        Take inherits its style and parameters unless given (`style="none"`: no style)."""
        if isinstance(clip, Take):
            style, kw = clip.inherit(style, kw)
        return self._continue("continue", clip, bars, variations, style, kw)

    def blend(self, clip: Clip | Take | None, styles: dict[str, float], bars: int = 8,
              variations: int = 4, slerp: bool = False, **kw: object) -> list[Take]:
        """Continue (or start from nothing) under a weighted mix of style vectors.
        Weights outside [0, 1] extrapolate past a style; such takes say so in their params."""
        if isinstance(clip, Take):
            _, kw = clip.inherit(styles, kw)
        kw["slerp"] = slerp
        return self._continue("blend", clip, bars, variations, dict(styles), kw)

    def morph(self, clip: Clip | Take | None, from_style: str, to_style: str, steps: int = 5,
              bars: int = 4, **kw: object) -> list[Take]:
        """`steps` clips walking from one style to the other (weights 0 .. 1), one per step."""
        if not 2 <= int(steps) <= MAX_VARIATIONS:
            raise ParameterError(f"steps must be in 2..{MAX_VARIATIONS}, got {steps}")
        mixes = [{from_style: 1 - i / (steps - 1), to_style: i / (steps - 1)} for i in range(steps)]
        if isinstance(clip, Take):
            _, kw = clip.inherit(mixes, kw)
        return self._continue("morph", clip, bars, steps, mixes, kw)

    def regenerate(self, clip: Clip | Take, bars: tuple[int, int] = (1, 1), variations: int = 4,
                   style: str | dict[str, float] | None = None, **kw: object) -> list[Take]:
        """Regenerate bars `bars[0]..bars[1]` (1-based, inclusive), keeping what is before and
        after. Takes never repeat an earlier take of the same region. Regenerating a Take
        inherits its style and parameters unless given (`style="none"`: no style)."""
        if isinstance(clip, Take):
            style, kw = clip.inherit(style, kw)
        parent = clip.id if isinstance(clip, Take) else None
        base = clip.clip if isinstance(clip, Take) else clip
        a, b = _bar_range(bars, base.n_bars)
        params, sp = self._params(kw, variations, bars=b - a + 1)
        tok, v = self.tok, self.tok.vocab
        # the bars around the region that the model sees (half its context: the sampler's
        # prompt window); the whole clip when it fits. Bars lo..hi-1, renumbered from 0.
        ids, lo, hi = _encode(tok, base, around=(a - 1, b, self.model.cfg.context // 2),
                              poll=_poll(kw))
        a, b = a - lo, b - lo
        starts = tok.bar_offsets(ids)
        head = tok.header(ids)
        body = ids[: -1] if ids[-1] == v.eos else ids
        pre = body[starts[0]: starts[a - 1]]
        suf = tok.restart_at_bar(body, b)[len(head):] if b < len(starts) else np.array([], ids.dtype)
        prompt = np.concatenate([head, pre, [v.fill], suf, [v.fill_start]]).astype(np.int64)
        state = tok.grammar.validate(prompt, fim=True, cancelled=_poll(kw))
        forced = [v.bar] + _own_or_ctx(body, a - 1, tok)
        key = _region_key(prompt)
        earlier = self._earlier.setdefault(key, [])
        template = None
        if kw.get("keep_rhythm"):
            template = _middle_tokens(tok, body, starts, a - 1, b)[len(forced):]
            sp = replace(sp, lock_meter=True)

        # the region in the clip's ticks; the decoded window starts at the clip's bar `lo`
        lo_tick, hi_tick, offset = base.bar_starts[lo + a - 1], base.bar_starts[lo + b], base.bar_starts[lo]

        def build(gen: np.ndarray) -> Clip:
            whole = tok.decode(np.concatenate([head, pre, gen, suf, [v.eos]]), name=base.name)
            # only the regenerated bars come from tokens; every other note and event is the
            # musician's own, exactly (no re-quantized velocities, no binned tempo)
            spliced = splice(base, whole, lo_tick, hi_tick, offset_ticks=offset)
            return carry(spliced, base, at_tick=0, key=kw.get("key"), lock_first=False)  # type: ignore[arg-type]

        runs = self._run(prompt, state, forced, style, params, sp, kw, n=int(variations),
                         bars_n=b - a + 1, earlier=earlier, build=build, template=template)
        out = []
        for r in runs:
            earlier.append(list(r.gen))
            out.append(self._take("regenerate", r, params, parent, (lo + a - 1, lo + b)))
        return out

    # ----------------------------------------------------------------- lyrics
    def lyrics_for(self, clip: Clip | Take, theme: str | None = None, rhyme: str = "ABAB",
                   variations: int = 4, **kw: object) -> list[Take]:
        """Lyrics for a melody: one line per phrase, syllables matching the phrase's notes
        exactly, in the rhyme scheme, written onto the notes as MIDI lyric events."""
        from musegen.lyrics.writer import lyrics_for

        return lyrics_for(self, clip, theme=theme, rhyme=rhyme, variations=variations, **kw)

    def melody_for(self, text: str, style: str | dict[str, float] | None = None, variations: int = 4,
                   **kw: object) -> list[Take]:
        """A melody for lyrics: one note per syllable, stressed syllables on strong beats,
        phrase ends at line ends; the syllables are written into the MIDI."""
        from musegen.lyrics.melody import melody_for

        return melody_for(self, text, style=style, variations=variations, **kw)

    # --------------------------------------------------------------- internals
    def _continue(self, op: str, clip: Clip | Take | None, bars: int, variations: int,
                  style: object, kw: dict) -> list[Take]:
        parent = clip.id if isinstance(clip, Take) else None
        base = clip.clip if isinstance(clip, Take) else clip
        params, sp = self._params(kw, variations, bars=bars)
        tok, v = self.tok, self.tok.vocab
        if base is None and not {"time_signature", "tempo", "program"} & set(kw):
            # from nothing: the style chooses the ensemble, metre and tempo itself
            prompt, forced, n_before = np.array([v.bos], dtype=np.int64), [], 0
            sp = replace(sp, free_first_bar=True)
        elif base is None:
            prompt, forced, n_before = self._empty_prompt(kw)
        else:  # the last bars the model can see (at most its context): same take as all of them
            # (with max_leap, back to every track's last note: the first new one steps from it)
            latest = _last_notes_bar(base) if kw.get("max_leap") is not None else None
            base_ids, first = _encode(tok, base, tail=self.model.cfg.context, latest=latest,
                                      poll=_poll(kw))
            prompt = base_ids[:-1] if base_ids[-1] == v.eos else base_ids
            forced, n_before = [v.bar], base.n_bars - first
        prompt = prompt.astype(np.int64)
        state = tok.grammar.validate(prompt, cancelled=_poll(kw))

        at_tick = base.bar_starts[-1] if base is not None else 0
        tempo = kw.get("tempo") if base is None else None

        def build(gen: np.ndarray) -> Clip:
            whole = tok.decode(np.concatenate([prompt, gen, [v.eos]]),
                               name=base.name if base else "musegen")
            take = whole.slice_bars(n_before, n_before + bars)
            return carry(take, base, at_tick=at_tick, tempo=tempo, key=kw.get("key"))  # type: ignore[arg-type]

        runs = self._run(prompt, state, forced, style, params, sp, kw, n=int(variations),
                         bars_n=bars, earlier=[], build=build)
        out = []
        for i, r in enumerate(runs):
            p = dict(params)
            if isinstance(style, list):
                p["styles"] = style[i]
            if op in ("blend", "morph"):
                w = p.get("styles") if isinstance(p.get("styles"), dict) else {}
                p["extrapolated"] = any(x < 0 or x > 1 for x in w.values())
            out.append(self._take(op, r, p, parent, (0, bars)))
        return out

    def _empty_prompt(self, kw: dict) -> tuple[np.ndarray, list[int], int]:
        v = self.tok.vocab
        num, den = kw.get("time_signature", (4, 4))  # type: ignore[misc]
        if (num, den) not in v.time_signatures:
            raise ParameterError(f"time_signature {num}/{den} is not supported")
        qpm = float(kw.get("tempo", 120.0))  # type: ignore[arg-type]
        if not 20 <= qpm <= 400:
            raise ParameterError(f"tempo must be in 20..400 quarter notes per minute, got {qpm}")
        from musegen.tokenizer.codec import tempo_bin

        program = int(kw.get("program", 0))  # type: ignore[arg-type]
        if not 0 <= program <= 127:
            raise ParameterError(f"program must be in 0..127, got {program}")
        prompt = np.array([v.bos, v.id("track", 0), v.id("program", program)], dtype=np.int64)
        forced = [v.bar, v.id("timesig", v.time_signatures.index((num, den))),
                  v.id("tempo", tempo_bin(qpm, v.tempos_qpm))]
        return prompt, forced, 0

    def _params(self, kw: dict, variations: object, bars: int) -> tuple[dict, SampleParams]:
        known = {"temperature", "top_p", "seed", "style_strength", "key", "scale", "pitch_range",
                 "density", "keep_rhythm", "tracks", "max_copy", "slerp", "time_signature", "max_leap",
                 "tempo", "program", "on_progress", "cancelled", "_inherited"}
        unknown = set(kw) - known
        if unknown:
            raise ParameterError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        if not isinstance(bars, int) or not 1 <= bars <= MAX_BARS:
            raise ParameterError(f"bars must be an integer in 1..{MAX_BARS}, got {bars!r}")
        if not isinstance(variations, int) or not 1 <= variations <= MAX_VARIATIONS:
            raise ParameterError(f"variations must be an integer in 1..{MAX_VARIATIONS}, got {variations!r}")
        t = _num(kw, "temperature", 1.0, 0.05, 5.0)
        p = _num(kw, "top_p", 0.95, 0.01, 1.0)
        g = _num(kw, "style_strength", 1.0, 0.0, 10.0)
        pcs = None
        if kw.get("key") is not None or kw.get("scale") is not None:
            key = str(kw.get("key") or "C major")
            try:
                tonic, mode = parse_key(key)
            except ValueError as e:
                raise ParameterError(str(e)) from None
            if kw.get("scale") is not None:
                mode = str(kw["scale"])
                if mode not in ("major", "minor"):
                    raise ParameterError(f"scale must be 'major' or 'minor', got {mode!r}")
            pcs = frozenset(scale_pitch_classes(tonic, mode))
        pr = kw.get("pitch_range")
        if pr is not None:
            try:
                lo, hi = (int(x) for x in pr)  # type: ignore[union-attr]
            except (TypeError, ValueError):
                raise ParameterError(f"pitch_range must be (low, high), got {pr!r}") from None
            if not 0 <= lo <= hi <= 127:
                raise ParameterError(f"pitch_range must satisfy 0 <= low <= high <= 127, got {pr!r}")
            pr = (lo, hi)
        dens = kw.get("density")
        if dens is not None:
            dens = _num(kw, "density", 4.0, 0.0, 64.0)
        leap = kw.get("max_leap")
        if leap is not None and (isinstance(leap, bool) or not isinstance(leap, int) or not 0 <= leap <= 127):
            raise ParameterError(f"max_leap must be an integer in 0..127 semitones, got {leap!r}")
        tracks = kw.get("tracks")
        if tracks is not None:
            tracks = frozenset(int(x) for x in tracks)  # type: ignore[union-attr]
        seed = kw.get("seed")
        if seed is None:
            seed = int(time.time_ns() % 2**31)
        if not isinstance(seed, int) or seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
        params = {"bars": bars, "variations": variations, "temperature": t, "top_p": p,
                  "style_strength": g, "key": kw.get("key"), "scale": kw.get("scale"),
                  "pitch_range": list(pr) if pr else None, "density": dens,
                  "tracks": sorted(tracks) if tracks else None, "seed": seed,
                  "max_copy": kw.get("max_copy"), "keep_rhythm": bool(kw.get("keep_rhythm", False)),
                  "max_leap": leap}
        if kw.get("_inherited"):
            params["inherited"] = list(kw["_inherited"])  # type: ignore[arg-type]
        sp = SampleParams(temperature=t, top_p=p, style_strength=g, pitch_classes=pcs,
                          pitch_range=pr, density=dens, tracks=tracks, max_leap=leap)
        return params, sp

    def _run(self, prompt: np.ndarray, state: object, forced: list[int], style: object,
             params: dict, sp: SampleParams, kw: dict, *, n: int, bars_n: int, earlier: list,
             build: Callable[[np.ndarray], Clip], template: list[int] | None = None
             ) -> list[_Row]:
        """Sample `n` rows; rows whose take copies more than `max_copy` notes from a training
        piece, or nearly repeats an earlier take of the same region, are drawn again with
        new seeds (up to `MAX_ATTEMPTS` times; a row still failing then says so)."""
        if isinstance(style, list):  # morph: one mix per row
            vecs = torch.stack([self.style_vector(s) for s in style])
            params["styles"] = None
        else:
            vecs = self.style_vector(style, slerp=bool(kw.get("slerp"))).expand(n, -1)
            params["styles"] = ({style: 1.0} if style != "none" else None) if isinstance(style, str) else style
        max_copy = kw.get("max_copy")
        if max_copy is not None and (not isinstance(max_copy, int) or max_copy < 1):
            raise ParameterError(f"max_copy must be a positive integer, got {max_copy!r}")
        rows: list[_Row | None] = [None] * n
        todo = list(range(n))
        seeds = [params["seed"] + i for i in range(n)]
        for attempt in range(MAX_ATTEMPTS):
            with _torch_threads(self.threads if self.device.type == "cpu" else None):
                res = sample(self.model, self.tok, prompt, state, vecs[todo].to(self.device), bars_n,
                             [seeds[i] + 7919 * attempt for i in todo], sp, forced=forced,
                             earlier=earlier, template=template,
                             on_progress=kw.get("on_progress"),  # type: ignore[arg-type]
                             cancelled=kw.get("cancelled"))  # type: ignore[arg-type]
            accepted = [list(r.gen) for r in rows if r is not None]
            retry = []
            for k, i in enumerate(todo):
                gen = res.tokens[k]
                clip = build(gen)
                nov = self.novelty_index.check(clip) if self.novelty_index is not None else None
                flags = []
                if max_copy is not None and nov is not None and nov.longest_run > max_copy:
                    flags.append("copies_more_than_max_copy")
                if template is None and _too_close(gen, list(earlier) + accepted):
                    flags.append("near_duplicate_of_earlier")
                rows[i] = _Row(gen, clip, nov, seeds[i] + 7919 * attempt, attempt, flags, res)
                if flags:
                    retry.append(i)
                else:
                    accepted.append(list(gen))
            todo = retry
            if not todo:
                break
        return [r for r in rows if r is not None]

    def _take(self, op: str, row: _Row, params: dict, parent: str | None,
              bars: tuple[int, int]) -> Take:
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


@dataclass
class _Row:
    gen: np.ndarray
    clip: Clip
    novelty: object | None
    seed: int
    attempt: int
    flags: list[str]
    res: SampleResult


def _middle_tokens(tok: Tokenizer, body: np.ndarray, starts: np.ndarray, a: int, b: int
                   ) -> list[int]:
    """Tokens of bars a..b-1 (0-based) as generated after FILL_START: the first BAR restates
    the time signature and tempo in force, exactly as the forced tokens do."""
    end = int(starts[b]) if b < len(starts) else len(body)
    restarted = tok.restart_at_bar(body[:end], a)
    return [int(t) for t in restarted[len(tok.header(body)):]]


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
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


def _num(kw: dict, name: str, default: float, lo: float, hi: float) -> float:
    x = kw.get(name, default)
    if x is None:
        x = default
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
        raise ParameterError(f"{name} must be a number, got {x!r}")
    if not lo <= float(x) <= hi:
        raise ParameterError(f"{name} must be in {lo}..{hi}, got {x!r}")
    return float(x)


def _encode(tok: Tokenizer, clip: Clip, *, tail: int | None = None, latest: int | None = None,
            around: tuple[int, int, int] | None = None, poll: Callable[[], bool] | None = None
            ) -> tuple:
    """Only the part of the clip a prompt needs, however long the clip: its last bars holding
    `tail` tokens, from bar `latest` or before -> (ids, first bar), or the bars
    `around=(first, end, tokens)` a region -> (ids, lo, hi) (`Tokenizer.encode_tail`,
    `Tokenizer.encode_around`). `poll` runs now and then."""
    if not isinstance(clip, Clip):
        raise ParameterError(f"expected a Clip or a Take, got {type(clip).__name__}")
    if around is not None:
        ids, lo, hi = tok.encode_around(clip, *around, cancelled=poll)
        return ids.astype(np.int64), lo, hi
    ids, first = tok.encode_tail(clip, int(tail or 0), latest=latest, cancelled=poll)
    return ids.astype(np.int64), first


def _last_notes_bar(clip: Clip) -> int:
    """The earliest bar holding some track's last onset (snapping to the grid only ever moves
    an onset into a later bar)."""
    lasts = [t.notes[-1].start_tick for t in clip.tracks if t.notes]
    if not lasts:
        return clip.n_bars
    return max(0, bisect.bisect_right(clip.bar_starts, min(lasts)) - 1)


def _poll(kw: dict) -> Callable[[], bool] | None:
    """For long encodes: a progress beat (0.0, nothing generated yet) and the cancel check."""
    on_progress, cancelled = kw.get("on_progress"), kw.get("cancelled")
    if on_progress is None and cancelled is None:
        return None

    def poll() -> bool:
        if on_progress is not None:
            on_progress(0.0)  # type: ignore[operator]
        return bool(cancelled is not None and cancelled())  # type: ignore[operator]
    return poll


def _bar_range(bars: object, n_bars: int) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in bars)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ParameterError(f"bars must be (first, last), 1-based, got {bars!r}") from None
    if a > b:
        raise ParameterError(f"bars {a}..{b}: the first bar ({a}) is after the last ({b})")
    if not 1 <= a <= b <= n_bars:
        raise ParameterError(f"bars {a}..{b} outside the clip's bars 1..{n_bars}")
    return a, b


def _own_or_ctx(body: np.ndarray, bar: int, tok: Tokenizer) -> list[int]:
    """The time signature and tempo in force at `bar`, to restate after its BAR."""
    r = tok.restart_at_bar(body, bar)
    head = len(tok.header(body))
    out = []
    for t in r[head + 1:]:
        if tok.vocab.kind(int(t)) in ("timesig", "tempo"):
            out.append(int(t))
        else:
            break
    return out


def _region_key(prompt: np.ndarray) -> str:
    """Earlier takes of a region are keyed by the prompt the model fills it from (the bars
    around the region): as cheap for a huge clip as for a short one."""
    return hashlib.sha1(np.ascontiguousarray(prompt, dtype=np.int64).tobytes()).hexdigest()[:16]


def _too_close(gen: np.ndarray, earlier: Sequence[Sequence[int]], threshold: float = 0.95) -> bool:
    """Near-identical: at least `threshold` of the tokens equal position by position."""
    g = list(gen)
    for e in earlier:
        n = max(len(g), len(e))
        same = sum(1 for x, y in zip(g, e) if x == y)
        if n and same / n >= threshold:
            return True
    return False


__all__ = ["Studio", "Take", "StyleInfo", "resolve_model_dir"]
