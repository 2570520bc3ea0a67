"""`Studio`: the musician-facing API. Every result is a `Take`.

    >>> import musegen
    >>> studio = musegen.Studio()                       # the shipped default model
    >>> takes = studio.continue_(musegen.Clip.load("tune.mid"), bars=8, style="irish-dance")
    >>> takes[0].save("take1.mid")                      # MIDI + a JSON sidecar
"""

from __future__ import annotations

import bisect
import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from musegen.carry import carry, splice
from musegen.clip import Clip
from musegen.errors import ParameterError
from musegen.generate import voices
from musegen.generate.constraints import SampleParams
from musegen.generate.phrase import FOLK_FAMILIES, dominant_style, family_of, motif_of, phrase_params
from musegen.generate.run import MAX_ATTEMPTS, Engine, TakeNotes, sample_params
from musegen.novelty import NoveltyIndex
from musegen.params import (
    INHERITED,
    MAX_BARS,
    MAX_VARIATIONS,
    SEAM_LEAP,
    check,
    default,
    params_for,
    parse_form,
)
from musegen.take import DRUMS_UNTRAINED, StyleInfo, Take
from musegen.tokenizer import Tokenizer

if TYPE_CHECKING:
    from musegen.lyrics.lm import LyricLM

DEFAULT_MODEL_DIR = Path(__file__).parent / "models" / "default"
FORM_SEED_STRIDE = 1009  # a form's take i draws its sections from seed + stride * i (+ section)


def resolve_model_dir(model: str | Path | None) -> Path:
    """None or 'default' -> the shipped model; otherwise a folder that must exist."""
    if model is None or str(model) == "default":
        path = DEFAULT_MODEL_DIR
    else:
        path = Path(model).expanduser()
    if not (path / "musegen.json").exists():
        raise ParameterError(f"model {str(model)!r}: no musegen checkpoint at {path}")
    return path


class Studio:
    """Loads a model folder once and generates takes from it."""

    def __init__(self, model: str | Path | None = None, device: str | None = None,
                 threads: int | None = None, lyric_model: str | Path | None = None,
                 backend: str | None = None) -> None:
        """`threads`: CPU threads for decoding; default all cores, at most 4. On an idle 2-core
        CPU two threads decode ~1.5x faster than one, but when another program keeps the
        cores busy a second thread mostly waits on the first (measured: 1.2 s with one thread
        vs 7.3 s with two for the same request on a fully loaded 2-core CPU), so pass
        `threads=1` (`--threads 1`) on a machine that is busy with other work.

        `backend`: how the CPU decodes, "auto" (whichever of ONNX Runtime and torch decodes
        faster on this CPU, measured by a ~1 s probe the first time a model runs on a CPU and
        cached under ~/.cache/musegen/onnx; torch without `musegen[fast]`), "torch" (the
        reference) or "onnx"; default $MUSEGEN_BACKEND, else "auto". Off the CPU it is torch.
        Both give the same logits within 1e-4, and each the same take for the same seed every
        time."""
        self.engine = Engine(resolve_model_dir(model), device, threads, backend)
        self._earlier: dict[str, list[list[int]]] = {}
        self._lyric_model_path = lyric_model
        self._lyric_lm = None  # loaded on first use (musegen.lyrics.lm.LyricLM)

    # the engine's parts, read-only (generation itself is `self.engine.run`)
    model_dir = property(lambda self: self.engine.model_dir)
    device = property(lambda self: self.engine.device)
    threads = property(lambda self: self.engine.threads)
    backend = property(lambda self: self.engine.backend)
    model = property(lambda self: self.engine.model)
    meta = property(lambda self: self.engine.meta)
    tok = property(lambda self: self.engine.tok)
    model_id = property(lambda self: self.engine.model_id)

    def warm(self) -> None:
        """Get decoding ready now rather than on the first request (`Engine.warm`)."""
        self.engine.warm()

    @property
    def novelty_index(self) -> NoveltyIndex | None:
        return self.engine.novelty_index

    @property
    def lyric_lm(self) -> LyricLM:
        """The lyric language model (the shipped one, or `lyric_model=` any local Hugging Face
        causal LM folder), loaded on first use."""
        if self._lyric_lm is None:
            from musegen.lyrics.lm import LyricLM

            self._lyric_lm = LyricLM.load(self._lyric_model_path, device=self.device)
        return self._lyric_lm

    # ----------------------------------------------------------------- styles
    @property
    def style_names(self) -> list[str]:
        return self.engine.style_names

    @property
    def styles(self) -> list[StyleInfo]:
        return self.engine.styles

    def style_index(self, name: str) -> int:
        return self.engine.style_index(name)

    def style_vector(self, styles: str | dict[str, float] | None, *, slerp: bool = False
                     ) -> torch.Tensor:
        return self.engine.style_vector(styles, slerp=slerp)

    def style_map(self, path: str | Path) -> Path:
        """A labelled 2-D picture (PCA) of the style vectors, written as PNG."""
        from musegen.plots import style_map

        return style_map(self.styles, Path(path))

    # ------------------------------------------------------------- operations
    def continue_(self, clip: Clip | Take | None, bars: int = 8, variations: int = 4,
                  style: str | dict[str, float] | None = None, **kw: object) -> list[Take]:
        """Continue after the clip's last bar; each take holds the new bars only. Continuing a
        Take inherits its style and parameters unless given (`style="none"`: no style).
        Keywords: see `musegen.params` (`params_for("continue")`)."""
        if isinstance(clip, Take):
            style, kw = clip.inherit(style, kw)
        given = _check("continue", dict(kw, bars=bars, variations=variations, style=style))
        return self._continue("continue", clip, given.get("style"), given)

    def blend(self, clip: Clip | Take | None, styles: dict[str, float], bars: int = 8,
              variations: int = 4, slerp: bool = False, **kw: object) -> list[Take]:
        """Continue (or start from nothing) under a weighted mix of style vectors.
        Weights outside [0, 1] extrapolate past a style; such takes say so in their params."""
        if isinstance(clip, Take):
            _, kw = clip.inherit(styles, kw)
        given = _check("blend", dict(kw, styles=styles, bars=bars, variations=variations, slerp=slerp))
        if "styles" not in given:
            raise ParameterError("styles: give at least one style with a weight")
        return self._continue("blend", clip, given["styles"], given)

    def morph(self, clip: Clip | Take | None, from_style: str, to_style: str, steps: int = 5,
              bars: int = 4, **kw: object) -> list[Take]:
        """`steps` clips walking from one style to the other (weights 0 .. 1), one per step."""
        if isinstance(clip, Take):  # the morph's own styles, never the take's
            _, kw = clip.inherit(from_style, kw)
        given = _check("morph", dict(kw, from_style=from_style, to_style=to_style, steps=steps,
                                     bars=bars))
        steps = given["variations"] = int(given["steps"])  # type: ignore[call-overload]
        mixes = [{from_style: 1 - i / (steps - 1), to_style: i / (steps - 1)} for i in range(steps)]
        return self._continue("morph", clip, mixes, given)

    def regenerate(self, clip: Clip | Take, bars: tuple[int, int] = (1, 1), variations: int = 4,
                   style: str | dict[str, float] | None = None, **kw: object) -> list[Take]:
        """Regenerate bars `bars[0]..bars[1]` (1-based, inclusive), keeping what is before and
        after. Takes never repeat an earlier take of the same region. Regenerating a Take
        inherits its style and parameters unless given (`style="none"`: no style)."""
        if isinstance(clip, Take):
            style, kw = clip.inherit(style, kw)
        kw = _check("regenerate", dict(kw, bars=bars, variations=variations, style=style))
        style, variations = kw.get("style"), int(kw["variations"])  # type: ignore[call-overload]
        parent = clip.id if isinstance(clip, Take) else None
        base = clip.clip if isinstance(clip, Take) else clip
        if not isinstance(base, Clip):
            raise ParameterError(f"expected a Clip or a Take, got {type(clip).__name__}")
        a, b = _bar_range(kw["bars"], base.n_bars)
        params, sp = _sample_params(kw, bars=b - a + 1, variations=variations)
        phrase, _ = phrase_params(self.engine.style_records, self.engine.priors, base, kw, style,
                                  bars=b - a + 1, n=variations, seed=params["seed"], bar_offset=a - 1,
                                  final=b == base.n_bars)
        sp = replace(sp, phrase=phrase)
        params.update(_phrase_record(kw, phrase))
        tok = self.tok
        # the bars around the region that the model sees (half its context: the sampler's
        # prompt window); the whole clip when it fits. Bars lo..hi-1, renumbered from 0.
        ids, lo, hi = _encode(tok, base, around=(a - 1, b, self.model.cfg.context // 2),
                              poll=_poll(kw))
        a, b = a - lo, b - lo
        infill = tok.infill_prompt(ids, a - 1, b)
        prompt = infill.ids
        state = tok.grammar.validate(prompt, fim=True, cancelled=_poll(kw))
        forced, middle = tok.bar_tokens(ids, a - 1, b)
        sp = self._voice_leading(base, style, kw, params, sp, present=False)
        params["seam_leap"] = int(kw.get("seam_leap", SEAM_LEAP))  # type: ignore[call-overload]
        sp = replace(sp, seam_leap=params["seam_leap"] if params["seam_leap"] < 127 else None)
        key = _region_key(prompt)
        earlier = self._earlier.setdefault(key, [])
        template = None
        if kw.get("keep_rhythm"):
            template = middle
            sp = replace(sp, lock_meter=True)

        # the region in the clip's ticks; the decoded window starts at the clip's bar `lo`
        lo_tick, hi_tick, offset = base.bar_starts[lo + a - 1], base.bar_starts[lo + b], base.bar_starts[lo]

        def build(gen: np.ndarray) -> Clip:
            whole = tok.decode(infill.whole(gen), name=base.name)
            # only the regenerated bars come from tokens; every other note and event is the
            # musician's own, exactly (no re-quantized velocities, no binned tempo)
            spliced = splice(base, whole, lo_tick, hi_tick, offset_ticks=offset)
            return carry(spliced, base, at_tick=0, key=kw.get("key"), lock_first=False)  # type: ignore[arg-type]

        runs = self._run(prompt, state, forced, style, params, sp, kw, n=int(variations),
                         bars_n=b - a + 1, earlier=earlier, build=build, template=template)
        out = []
        for r in runs:
            earlier.append(list(r.gen))
            out.append(self.engine.take("regenerate", r, params, parent, (lo + a - 1, lo + b)))
        return out

    def arrange(self, clip: Clip | Take, add: str | int = "satb",
                style: str | dict[str, float] | None = None, keep: list[int] | None = None,
                bars: tuple[int, int] | None = None, variations: int = 4, **kw: object) -> list[Take]:
        """Add voices to the clip: every note of the kept tracks (`keep`, default every track
        with notes) stays exactly as given, the added ones (`add`: 'satb', 'bass', 'alto,tenor',
        'counter' or a count) are new; `bars=(first, last)` arranges only those bars. The kept
        tracks' roles come from their register unless `roles=` gives them. An arrangement of a
        Take has it as parent. Keywords: see `musegen.params` (`params_for("arrange")`)."""
        from musegen.arrange import arrange

        return arrange(self.engine, clip, add=add, style=style, keep=keep, bars=bars,
                       variations=variations, **kw)

    # ----------------------------------------------------------------- lyrics
    def lyrics_for(self, clip: Clip | Take, theme: str | None = None, rhyme: str = "ABAB",
                   variations: int = 4, **kw: object) -> list[Take]:
        """Lyrics for a melody: one line per phrase, syllables matching the phrase's notes
        exactly, in the rhyme scheme, written onto the notes as MIDI lyric events."""
        from musegen.lyrics.writer import lyrics_for

        check("lyrics", dict(kw, theme=theme, rhyme=rhyme, variations=variations))  # unknown names too
        return lyrics_for(lambda: self.lyric_lm, clip, model_id=self.model_id,
                          threads=self.engine.cpu_threads, theme=theme, rhyme=rhyme,
                          variations=variations, **kw)  # type: ignore[arg-type]

    def melody_for(self, text: str, style: str | dict[str, float] | None = None, variations: int = 4,
                   **kw: object) -> list[Take]:
        """A melody for lyrics: one note per syllable, stressed syllables on strong beats,
        phrase ends at line ends; the syllables are written into the MIDI."""
        from musegen.lyrics.melody import melody_for

        return melody_for(self.engine, text, style=style, variations=variations, **kw)

    # --------------------------------------------------------------- internals
    def _continue(self, op: str, clip: Clip | Take | None, style: object, kw: dict) -> list[Take]:
        """continue, blend and morph: `kw` as `_check` returned it."""
        if kw.get("form"):
            return self._form(clip, style, kw)
        bars, variations = int(kw["bars"]), int(kw["variations"])
        parent = clip.id if isinstance(clip, Take) else None
        base = clip.clip if isinstance(clip, Take) else clip
        self.engine.style_rows(style, variations)  # an unknown style: refused before any work
        if kw.get("rhythm_style"):
            self.engine.style_index(str(kw["rhythm_style"]))
        params, sp = _sample_params(kw, bars=bars, variations=variations)
        tok, v = self.tok, self.tok.vocab
        prompt, forced, n_before, sp, start = self._continue_prompt(base, kw, sp, style, params["seed"])
        ensemble = sp.voices  # a blend from nothing: its ensemble's plan (`_opening`)
        sp = self._voice_leading(base, style, kw, params, sp, from_nothing=len(prompt) == 1)
        if ensemble is not None and sp.voices is None and params["voice_leading"] != "off":
            sp, params["voice_led"] = replace(sp, voices=ensemble), True
        state = tok.grammar.validate(prompt, cancelled=_poll(kw))
        idiomatic = bool(kw.get("idiomatic", True))
        phrase, drawn = phrase_params(self.engine.style_records, self.engine.priors if idiomatic else None,
                                      base, kw, style, bars=bars, n=variations, seed=params["seed"],
                                      bar_offset=base.n_bars if base is not None else 0,
                                      same_start=op == "morph", free_start=sp.free_first_bar)
        sp = replace(sp, phrase=phrase)
        params.update(_phrase_record(kw, phrase))

        at_tick = base.bar_starts[-1] if base is not None else 0
        tempo = kw.get("tempo", start.get("tempo")) if base is None else None  # exact, as asked or drawn

        def build(gen: np.ndarray) -> Clip:
            whole = tok.decode(np.concatenate([prompt, gen, [v.eos]]),
                               name=base.name if base else "musegen")
            take = whole.slice_bars(n_before, n_before + bars)
            return carry(take, base, at_tick=at_tick, tempo=tempo, key=kw.get("key"))  # type: ignore[arg-type]

        def partial(gen: np.ndarray, k: int) -> Clip:  # the first k bars, for `on_bars`
            whole = tok.decode(np.concatenate([prompt, gen, [v.eos]]),
                               name=base.name if base else "musegen")
            take = whole.slice_bars(n_before, min(n_before + k, whole.n_bars))
            return carry(take, base, at_tick=at_tick, tempo=tempo, key=kw.get("key"))  # type: ignore[arg-type]

        related = op == "morph" and idiomatic  # a morph's steps: one piece under changing styles
        if kw.get("rhythm_style"):
            runs = self._aspect(prompt, state, forced, style, params, sp, kw, n=variations, bars_n=bars,
                                build=build)
        else:
            runs = self._run(prompt, state, forced, style, params, sp, kw, n=int(variations),
                             bars_n=bars, earlier=[], build=build, partial=partial, related=related)
        return [self.engine.take(op, r, _continue_params(op, params, style, i, {**start, **drawn[i]}),
                                 parent, (0, bars))
                for i, r in enumerate(runs)]

    def _form(self, clip: Clip | Take | None, style: object, kw: dict) -> list[Take]:
        """continue with a `form`: per take, A is the prompt's last `bars` bars (from nothing: a
        phrase generated first), a plain letter seen before is restated as it was, A' is A with
        half its bars regenerated (the second half; A'': the first), a new letter is continued
        from everything before it. Each take holds every section after the first A."""
        sections = parse_form(str(kw["form"]))
        parent = clip.id if isinstance(clip, Take) else None
        base = clip.clip if isinstance(clip, Take) else clip
        size = int(kw["bars"]) if base is None else min(int(kw["bars"]), base.n_bars)
        seed = int(kw["seed"]) if kw.get("seed") is not None else int(time.time_ns() % 2**31)
        one = {k: w for k, w in kw.items() if k not in
               ("form", "bars", "variations", "seed", "style", "steps", "_inherited")}
        takes = []
        for i in range(int(kw["variations"])):
            sd = seed + FORM_SEED_STRIDE * i
            t0 = time.perf_counter()
            if base is None:
                first = self.continue_(None, bars=size, variations=1, seed=sd, style=style, **one)[0]
                whole, n_before = first.clip, 0
            else:
                whole, n_before = base, base.n_bars
            a = whole.slice_bars(whole.n_bars - size, whole.n_bars)
            seen = {"A": a}
            for k, (letter, primes) in enumerate(sections[1:], start=1):
                if primes == 0 and letter in seen:
                    whole = whole.concat(seen[letter])
                elif letter in seen:  # a variation: half of the section drawn again
                    whole = whole.concat(seen[letter])
                    half, end = max(1, size // 2), whole.n_bars
                    region = (end - half + 1, end) if primes % 2 else (end - size + 1, end - size + half)
                    again = {k2: w for k2, w in one.items() if k2 in params_for("regenerate")}
                    whole = self.regenerate(whole, bars=region, variations=1, seed=sd + k, style=style,
                                            **again)[0].clip
                else:
                    more = {k2: w for k2, w in one.items()
                            if k2 not in ("tempo", "time_signature", "program")}  # from nothing only
                    new = self.continue_(whole, bars=size, variations=1, seed=sd + k, style=style, **more)[0]
                    whole = whole.concat(new.clip)
                    seen[letter] = new.clip
            out = whole.slice_bars(n_before, whole.n_bars)
            folk = family_of(self.engine.style_records, dominant_style(style)) in FOLK_FAMILIES
            params = dict(_phrase_record(kw), motif=motif_of(kw, folk), form=kw["form"], bars=size,
                          variations=int(kw["variations"]),
                          request_seed=seed, styles=self.engine.style_rows(style, 1)[1])
            takes.append(Take(clip=out, operation="continue", params=params, seed=sd,
                              model_id=self.model_id, parent=parent, bars=(0, out.n_bars),
                              seconds=time.perf_counter() - t0))
        return takes

    def _aspect(self, prompt: np.ndarray, state: object, forced: list[int], style: object, params: dict,
                sp: SampleParams, kw: dict, *, n: int, bars_n: int, build: Callable[[np.ndarray], Clip]
                ) -> list:
        """An aspect blend: each take's onsets, durations and tracks from `rhythm_style` (a first
        pass), its pitches drawn again under the blend with that pass as keep-rhythm template."""
        rhythm = str(kw["rhythm_style"])
        self.engine.style_index(rhythm)  # an unknown name: one clear error
        first = self._run(prompt, state, forced, rhythm, dict(params), sp, kw, n=n, bars_n=bars_n,
                          earlier=[], build=build)
        out = []
        for i, r in enumerate(first):
            template = [int(t) for t in r.gen[len(forced):]]
            p = sp.phrase
            one = replace(sp, phrase=replace(p, row_keys=(p.key_of(i),) if p.key_of(i) else None,
                                             row_tempos=None) if p is not None else None)
            row_params = dict(params, seed=params["seed"] + i)
            out += self._run(prompt, state, forced, style, row_params, one, kw, n=1, bars_n=bars_n,
                             earlier=[], build=build, template=template)
        params["styles"] = row_params["styles"] if first else params.get("styles")
        return out

    def _continue_prompt(self, base: Clip | None, kw: dict, sp: SampleParams, style: object = None,
                         seed: int = 0) -> tuple[np.ndarray, list[int], int, SampleParams, dict]:
        """(prompt, forced tokens, bars of `base` before the new ones, sampler params, what a
        start from nothing drew for every row: {"tempo": qpm}) to continue `base`, or to start
        from nothing when it is None."""
        v = self.tok.vocab
        start: dict = {}
        given = {"time_signature", "tempo", "program"} & set(kw)
        idiomatic = kw.get("idiomatic", True)
        if base is None and not given and _is_blend(style) and idiomatic:
            # a blend from nothing: the heaviest style chooses the ensemble and metre, once
            prompt, forced, start, plan = self._opening(style, kw, sp, seed)
            sp = replace(sp, voices=plan if plan.n_voices != (1, 1) else None)  # `_continue` keeps it
            n_before = 0
        elif base is None and not given:
            # from nothing: the style chooses the ensemble and metre itself (the tempo and key
            # are drawn per take from its real pieces: `phrase_params`)
            prompt, forced, n_before = np.array([v.bos], dtype=np.int64), [], 0
            sp = replace(sp, free_first_bar=True)
        elif base is None:
            if "tempo" not in kw and idiomatic:
                qpm = self._draw_tempo(style, seed)
                if qpm is not None:
                    kw = dict(kw, tempo=qpm)
                    start["tempo"] = qpm
            prompt, forced, n_before = self._empty_prompt(kw)
        else:  # the last bars the model can see (at most its context): same take as all of them
            # (with max_leap, back to every track's last note: the first new one steps from it)
            latest = _last_notes_bar(base) if kw.get("max_leap") is not None else None
            base_ids, first = _encode(self.tok, base, tail=self.model.cfg.context, latest=latest,
                                      poll=_poll(kw))
            prompt = base_ids[:-1] if base_ids[-1] == v.eos else base_ids
            forced, n_before = [v.bar], base.n_bars - first
        return prompt.astype(np.int64), forced, n_before, sp, start

    def _draw_tempo(self, style: object, seed: int) -> float | None:
        """One tempo for a request from nothing, from its heaviest style's real tempi."""
        dom = dominant_style(style)
        priors = self.engine.priors
        if dom is None or priors is None:
            return None
        return priors.draw_tempo(dom, np.random.default_rng([seed, 1]))

    def _opening(self, style: object, kw: dict, sp: SampleParams, seed: int
                 ) -> tuple[np.ndarray, list[int], dict, voices.VoicePlan]:
        """A blend from nothing: the header (tracks and programs) and first bar head (metre)
        the heaviest style chooses, drawn once with the request's seed, with as many voices as
        the weights give (`voices.blend_ensemble`: the styles' voice counts, weighted), and its
        tempo from that style's real tempi -> (prompt, forced tokens, {"tempo": qpm, "voices":
        n}, the voice plan of that ensemble). Every take shares them: the weights act on the
        music and step the texture, rather than the heaviest style flipping it at half."""
        from musegen.generate.run import torch_threads
        from musegen.generate.sampler import sample
        from musegen.tokenizer.codec import tempo_bin

        tok, v = self.tok, self.tok.vocab
        dom = dominant_style(style)
        n, ranges = voices.blend_ensemble(style if isinstance(style, dict) else {dom: 1.0},  # type: ignore[dict-item]
                                          self.engine.voice_data)
        plan = voices.VoicePlan(None, n_voices=(n, n), ranges_by_count={n: ranges} if ranges else {})
        bos = np.array([v.bos], dtype=np.int64)
        state = tok.grammar.validate(bos)
        vec = self.engine.style_vector(dom).expand(1, -1).to(self.device)
        one = SampleParams(temperature=sp.temperature, top_p=sp.top_p, style_strength=sp.style_strength,
                           free_first_bar=True)

        def draw(p: SampleParams) -> tuple[list[int], list[int]]:  # (header, first bar's head)
            with torch_threads(self.engine.cpu_threads):
                gen = [int(t) for t in sample(self.model, tok, bos, state, vec, 1, [seed], p).tokens[0]]
            head = gen[:gen.index(v.bar)] if v.bar in gen else gen
            return head, gen[len(head) + 1:]

        # the metre as the heaviest style draws it (the same at every weight it leads), the
        # header again with the blend's voice count where the free one has another
        head, bar_head = draw(one)
        if sum(1 for t in head if t in v.ranges["track"]) != n:
            head, _ = draw(replace(one, voices=plan))
        sig = [t for t in bar_head[:1] if t in v.ranges["timesig"]]
        tempos = [t for t in bar_head[:2] if t in v.ranges["tempo"]]
        qpm = self._draw_tempo(style, seed)
        start: dict = {}
        if qpm is not None:
            tempos, start["tempo"] = [v.id("tempo", tempo_bin(qpm, v.tempos_qpm))], qpm
        prompt = np.concatenate([bos, np.asarray(head, dtype=np.int64)])
        start["voices"] = n
        return prompt, [v.bar, *sig, *tempos], start, plan

    def _empty_prompt(self, kw: dict) -> tuple[np.ndarray, list[int], int]:
        """From nothing, in the given metre, tempo and program (checked by `musegen.params`)."""
        v = self.tok.vocab
        num, den = kw.get("time_signature", default("continue", "time_signature"))
        if (num, den) not in v.time_signatures:
            raise ParameterError(f"time_signature {num}/{den} is not supported")
        qpm = float(kw.get("tempo", default("continue", "tempo")))
        from musegen.tokenizer.codec import tempo_bin

        program = int(kw.get("program", default("continue", "program")))
        prompt = np.array([v.bos, v.id("track", 0), v.id("program", program)], dtype=np.int64)
        forced = [v.bar, v.id("timesig", v.time_signatures.index((num, den))),
                  v.id("tempo", tempo_bin(qpm, v.tempos_qpm))]
        return prompt, forced, 0

    def _voice_leading(self, base: Clip | None, style: object, kw: dict, params: dict, sp: object,
                       *, from_nothing: bool = False, present: bool = True) -> object:
        """The sampler's params with the request's voice-leading plan (`voices.plan`), and
        whether it applies recorded in the takes' params (`voice_led`)."""
        mode = str(kw.get("voice_leading", default("continue", "voice_leading")))
        one = style[0] if isinstance(style, list) and style else style  # morph: where it starts
        tracks = kw.get("tracks")
        vp = voices.plan(mode, one, base, self.engine.voice_data, from_nothing=from_nothing,
                         tracks=frozenset(tracks) if tracks is not None else None)  # type: ignore[arg-type]
        if vp is not None and not present:
            vp = replace(vp, present=False)
        params["voice_led"] = vp is not None
        return replace(sp, voices=vp)  # type: ignore[type-var]

    def _run(self, prompt: np.ndarray, state: object, forced: list[int], style: object,
             params: dict, sp: object, kw: dict, *, n: int, bars_n: int, earlier: list,
             build: Callable[[np.ndarray], Clip], template: list[int] | None = None,
             partial: Callable[[np.ndarray, int], Clip] | None = None, related: bool = False) -> list:
        """The engine's run of `n` rows; records the request's `styles` in `params`."""
        vecs, params["styles"] = self.engine.style_rows(style, n, slerp=bool(kw.get("slerp")))
        return self.engine.run(prompt, state, forced, vecs, sp, seed=params["seed"], n=n,  # type: ignore[arg-type]
                               bars_n=bars_n, build=build, earlier=earlier, template=template,
                               max_copy=params["max_copy"], on_progress=kw.get("on_progress"),  # type: ignore[arg-type]
                               cancelled=kw.get("cancelled"), on_bars=kw.get("on_bars"),  # type: ignore[arg-type]
                               partial=partial, related=related)


def _is_blend(style: object) -> bool:
    """More than one style weighs in (a blend's mix, or a morph's list of mixes)."""
    if isinstance(style, list):
        return True
    return isinstance(style, dict) and sum(1 for w in style.values() if w) > 1


def _phrase_record(kw: dict, phrase: object = None) -> dict:
    """The phrase parameters a take records (as used: their defaults when not given)."""
    return {"cadence": kw.get("cadence", default("continue", "cadence")),
            "motif": getattr(phrase, "motif", kw.get("motif")),
            **({"form": kw["form"]} if kw.get("form") else {}),
            **({"rhythm_style": kw["rhythm_style"]} if kw.get("rhythm_style") else {})}


def _continue_params(op: str, params: dict, style: object, i: int, start: dict | None = None) -> dict:
    """The params take `i` of a continue, blend or morph records: a morph's own mix, whether
    a blend or morph's weights leave [0, 1], and what a start from nothing drew (`start`:
    its key and tempo from the style's real pieces; a blend's voice count, `voices`)."""
    p = dict(params)
    if start:
        p["start"] = dict(start)
    if isinstance(style, list):
        p["styles"] = style[i]
    if op in ("blend", "morph"):
        w = p.get("styles") if isinstance(p.get("styles"), dict) else {}
        p["extrapolated"] = any(x < 0 or x > 1 for x in w.values())
    return p


def _check(op: str, values: dict) -> dict:
    """An operation's keywords checked against `musegen.params` (None: not given), with the
    operation's counts (bars, variations, steps) defaulted and `_inherited` (the names a take
    built on a take inherited, from `Take.inherit`) kept."""
    inherited = values.pop("_inherited", None)
    given = check(op, values)
    for name in ("bars", "variations", "steps"):
        if name in params_for(op) and name not in given:
            given[name] = default(op, name)
    if inherited:
        given["_inherited"] = inherited
    return given


def _sample_params(kw: dict, *, bars: int, variations: int) -> tuple[dict, object]:
    params, sp = sample_params(kw, bars=bars, variations=variations)
    if kw.get("_inherited"):
        params["inherited"] = list(kw["_inherited"])
    return params, sp


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


def _region_key(prompt: np.ndarray) -> str:
    """Earlier takes of a region are keyed by the prompt the model fills it from (the bars
    around the region): as cheap for a huge clip as for a short one."""
    return hashlib.sha1(np.ascontiguousarray(prompt, dtype=np.int64).tobytes()).hexdigest()[:16]


# re-exported: `from musegen.studio import Take` and the limits keep working
__all__ = ["DEFAULT_MODEL_DIR", "DRUMS_UNTRAINED", "INHERITED", "MAX_ATTEMPTS", "MAX_BARS",
           "MAX_VARIATIONS", "Studio", "StyleInfo", "Take", "TakeNotes", "resolve_model_dir"]
