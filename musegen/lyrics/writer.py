"""Lyrics for a melody: phrases from the notes, one line per phrase, syllables counted exactly.

How a line is written (constrained decoding, not filtering afterwards):
- The melody's phrases come from its notes: a rest of at least a beat, a long note (at least
  twice the median length and a beat), or a phrase past 16 notes (cut at a bar line) ends one;
  phrases of fewer than 3 notes join their neighbour. Each phrase's note count is its line's
  syllable budget.
- The end word is chosen first. A line that opens a rhyme group takes an end word the model
  proposes (the shipped model reads a *plan* `<|sN|> word<|sep|>` before each line, so it can
  say which word it wants to end on) from the words that have rhymes; a line that must rhyme
  takes a word of the same CMU rhyme class (`pronouncing`), chosen by the model's preference.
- The line is then sampled token by token (Gumbel-max over the allowed tokens, which is exact
  sampling from the renormalised masked distribution). A token is allowed only if the words it
  completes still fit the budget: a word piece may grow the current word only while its
  syllables fit, a new word only when at least one syllable is left, and the end word (then a
  line break) exactly when the budget is used up. The invariant "used + current word <=
  budget" holds after every token, so a line can always be finished: every line has exactly
  the phrase's syllable count.
- Stress: word starts whose stressed syllables would land on beats get a soft bonus while
  sampling (`_stress_bonus`), and of several candidates decoded per line in one batch the one
  whose stresses best meet the beats (stressed on a beat, unstressed off it) is kept.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from musegen.clip import PPQ, Clip
from musegen.errors import ParameterError
from musegen.generate.run import torch_threads
from musegen.lyrics import data as D
from musegen.lyrics.lm import BANNED, CONT, NEWLINE, PUNCT, START, LyricLM, n_syllables
from musegen.lyrics.syllables import _analyse, attach_lyrics, line_syllables, words
from musegen.params import check, default
from musegen.take import Take

MAX_PHRASE = 16
MIN_PHRASE = 3
MAX_WORD_CHARS = 18
CONTEXT_LINES = 6


# ----------------------------------------------------------------------------- melody side
def melody_track(clip: Clip) -> int:
    """The track that carries the tune: among pitched tracks with notes, the highest on average."""
    best, best_mean = -1, -1.0
    for i, t in enumerate(clip.tracks):
        if t.is_drum or not t.notes:
            continue
        m = float(np.mean([n.pitch for n in t.notes]))
        if m > best_mean:
            best, best_mean = i, m
    if best < 0:
        raise ParameterError("the clip has no pitched notes to write lyrics for")
    return best


def onsets_of(clip: Clip, track: int) -> list[tuple[int, int]]:
    """(onset tick, end tick) of each distinct onset of `track` (the highest note of a chord),
    in the order `attach_lyrics` gives syllables to them."""
    best: dict[int, int] = {}
    pitch: dict[int, int] = {}
    for n in clip.tracks[track].notes:
        if n.start_tick not in pitch or n.pitch > pitch[n.start_tick]:
            pitch[n.start_tick], best[n.start_tick] = n.pitch, n.end_tick
    return sorted(best.items())


def beat_ticks(num: int, den: int) -> int:
    """The felt beat: a dotted quarter in compound metres (6/8, 9/8, 12/8), else 1/den."""
    unit = PPQ * 4 // den
    return unit * 3 if den == 8 and num % 3 == 0 and num > 3 else unit


def strong_flags(clip: Clip, ticks: Sequence[int]) -> list[bool]:
    """Whether each onset falls on a beat of its bar's metre."""
    out = []
    starts = clip.bar_starts
    for t in ticks:
        ts = clip.time_signature_at(t)
        i = bisect.bisect_right(starts, t) - 1
        bar = starts[i] if i >= 0 else 0
        out.append((t - bar) % beat_ticks(ts.numerator, ts.denominator) == 0)
    return out


def phrases(clip: Clip, track: int) -> list[list[int]]:
    """Indices into `onsets_of(clip, track)`, one list per phrase."""
    ons = onsets_of(clip, track)
    if not ons:
        raise ParameterError(f"track {track} has no notes")
    beat = beat_ticks(clip.time_signatures[0].numerator, clip.time_signatures[0].denominator)
    lengths = [max(e - s, 1) for s, e in ons]
    med = float(np.median(lengths))
    groups: list[list[int]] = [[]]
    for i, (_, e) in enumerate(ons):
        groups[-1].append(i)
        nxt = ons[i + 1][0] if i + 1 < len(ons) else None
        rest = nxt is not None and nxt - e >= beat
        long_note = lengths[i] >= max(2 * med, beat) and len(groups[-1]) >= MIN_PHRASE
        if nxt is not None and (rest or long_note):
            groups.append([])
    groups = [g for g in groups if g]
    out: list[list[int]] = []
    starts = set(clip.bar_starts)
    for g in groups:  # cut long phrases at the bar line nearest their middle
        while len(g) > MAX_PHRASE:
            mid = len(g) // 2
            cuts = [k for k in range(MIN_PHRASE, len(g) - MIN_PHRASE + 1) if ons[g[k]][0] in starts
                    and k <= MAX_PHRASE] or [min(mid, MAX_PHRASE)]
            k = min(cuts, key=lambda c: abs(c - mid))
            out.append(g[:k])
            g = g[k:]
        out.append(g)
    merged: list[list[int]] = []
    for g in out:  # short phrases join the one before (or the next, at the start)
        if merged and (len(g) < MIN_PHRASE or len(merged[-1]) < MIN_PHRASE) and len(merged[-1]) + len(g) <= 24:
            merged[-1] = merged[-1] + g
        else:
            merged.append(g)
    return merged


# ----------------------------------------------------------------------------- rhyme
def rhyme_scheme(rhyme: str | None, n: int) -> list[tuple[int, str] | None]:
    """Group key of each line (stanza number, letter), or None for a free line."""
    if not rhyme:
        return [None] * n
    r = rhyme.strip().upper()
    if not r.isalpha() or len(r) > 16:
        raise ParameterError(f"rhyme must be letters like ABAB or AABB (at most 16), got {rhyme!r}")
    return [(i // len(r), r[i % len(r)]) for i in range(n)]


class RhymeIndex:
    """Words the model knows, grouped by CMU rhyme class (stressed vowel to the end)."""

    def __init__(self, freq: dict[str, int], top: int = 20_000) -> None:
        import pronouncing

        self.freq = {w: c for w, c in freq.items() if c >= 8}
        self.part: dict[str, str] = {}
        self.classes: dict[str, list[tuple[str, int]]] = {}
        self._opening: list[tuple[str, int]] | None = None
        for w, c in list(freq.items())[:top]:
            if not w.isalpha() or len(w) < 2:
                continue
            ph = pronouncing.phones_for_word(w)
            if not ph:
                continue
            rp = pronouncing.rhyming_part(ph[0])
            self.part[w] = rp
            self.classes.setdefault(rp, []).append((w, int(c)))

    def rhyme_part(self, word: str) -> str | None:
        w = word.lower()
        if w in self.part:
            return self.part[w]
        import pronouncing

        ph = pronouncing.phones_for_word(w)
        return pronouncing.rhyming_part(ph[0]) if ph else None

    def rhymes(self, a: str, b: str) -> bool:
        pa, pb = self.rhyme_part(a), self.rhyme_part(b)
        return pa is not None and pa == pb and a.lower() != b.lower()

    def candidates(self, max_syl: int, *, rhyme_with: str | None = None, avoid: Sequence[str] = (),
                   limit: int = 400) -> list[tuple[str, int]]:
        avoid_l = {a.lower() for a in avoid}
        if rhyme_with is not None:
            rp = self.rhyme_part(rhyme_with)
            pool = self.classes.get(rp, []) if rp else []
        else:  # an opening end word: common, not a function word, with at least 3 rhymes
            if self._opening is None:
                self._opening = sorted(((w, c) for ws in self.classes.values() if len(ws) >= 4 for w, c in ws
                                        if w not in D.STOPWORDS), key=lambda x: -x[1])
            pool = self._opening
        out = [(w, c) for w, c in pool if w not in avoid_l and 1 <= n_syllables(w) <= max_syl]
        return out[:limit]


# ----------------------------------------------------------------------------- decoding
@dataclass
class _Row:
    budget: int  # syllables of the free part (the line minus its end word)
    end_ids: list[int] | None  # " endword" + newline, forced once the budget is used
    used: int = 0
    word: str = ""
    text: str = ""
    punct_run: int = 0
    forced: deque = field(default_factory=deque)
    done: bool = False
    logprob: float = 0.0
    n_tokens: int = 0
    strong: tuple[bool, ...] = ()  # per syllable of the line: does its note fall on a beat


STRESS_WEIGHT = 1.5  # nats added to a word start whose stresses all meet the beats (see _stress_bonus)


def _stress_table(lm: LyricLM) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: the stresses of the word its letters spell (1 stressed, 0 not, -1 past the
    word; first 4 syllables) and a mask of word-start tokens."""
    cached = lm.__dict__.get("_stress_table")
    if cached is None:
        table = torch.full((len(lm.kinds), 4), -1, dtype=torch.int8)
        starts = torch.zeros(len(lm.kinds), dtype=torch.bool)
        for t, (k, letters) in enumerate(zip(lm.kinds, lm.letters)):
            if k in (START, CONT) and letters.strip("'"):
                st = [min(1, s.stress) for s in _analyse(letters.strip("'"))][:4]
                table[t, : len(st)] = torch.tensor(st, dtype=torch.int8)
                starts[t] = True
        cached = lm.__dict__["_stress_table"] = (table, starts)
    return cached


def _stress_bonus(lm: LyricLM, rows: Sequence[_Row]) -> torch.Tensor:
    """A soft push toward words whose stressed syllables land on beats: for each row at a word
    boundary, STRESS_WEIGHT x (share of the word's syllables where stressed <=> on a beat - 1/2)
    on every word-start token (the count and rhyme constraints stay hard; this only reorders)."""
    table, starts = _stress_table(lm)
    bonus = torch.zeros((len(rows), len(lm.kinds)))
    for i, r in enumerate(rows):
        if r.done or r.forced or not r.strong:
            continue
        pos = r.used + (n_syllables(r.word) if r.word else 0)  # where a new word's first syllable falls
        beats = torch.full((4,), -2, dtype=torch.int8)
        ahead = r.strong[pos: pos + 4]
        if not ahead:
            continue
        beats[: len(ahead)] = torch.tensor([1 if b else 0 for b in ahead], dtype=torch.int8)
        valid = (table >= 0) & (beats >= 0)
        agree = ((table == beats) & valid).sum(-1).float() / valid.sum(-1).clamp(min=1).float()
        mask = starts & (lm.kinds_tensor == START if r.word or r.text.strip() else starts)
        bonus[i] = torch.where(mask, STRESS_WEIGHT * (agree - 0.5), torch.zeros(()))
    return bonus


def _lexicon(lm: LyricLM) -> tuple[frozenset[str], frozenset[str]]:
    """(known words, every prefix of a known word), lower case: the words of the model's
    training verse seen at least 8 times (`words.json`; the shipped list for foreign models).
    Empty when there is no word list, which turns the known-word rule off."""
    cached = lm.__dict__.get("_lexicon")
    if cached is None:
        known = frozenset(w for w in _rhyme_index(lm).freq if w.replace("'", "").isalpha())
        prefixes = frozenset(w[:i] for w in known for i in range(1, len(w) + 1))
        cached = lm.__dict__["_lexicon"] = (known, prefixes)
    return cached


def _known(lm: LyricLM, word: str) -> bool:
    known, _ = _lexicon(lm)
    w = word.lower().strip("'")
    if not known or w in known:
        return True
    base, _, tail = w.rpartition("'")  # star's, o'er-like forms, call'd
    return bool(base) and base in known and tail in ("s", "d", "ll", "st", "t", "re", "ve")


def _allowed(lm: LyricLM, r: _Row, t: int, strict: bool = True) -> str | None:
    """'tok' (an ordinary token), 'finish' (start the forced end word), or None.

    The syllable budget is always enforced. `strict` adds that words are spelled toward a
    known word and closed only when they are one; the fallback drops it if nothing else fits."""
    k = lm.kinds[t]
    if k == BANNED:
        return None
    cur = n_syllables(r.word) if r.word else 0
    closes_ok = not strict or not r.word or _known(lm, r.word)
    if r.end_ids is not None and t == r.end_ids[0] and r.used + cur == r.budget:
        return "finish" if closes_ok else None
    # a word piece without a space starts a word at the line's start, or right after a hyphen
    # ("water-scented": `words()` counts the two halves as two words, and so does the budget)
    starts_word = k == START or (k == CONT and not r.word and (not r.text.strip() or r.text.endswith("-")))
    letters = lm.letters[t]
    if k == CONT and r.word and not starts_word:
        new = r.word + letters
        if strict and _lexicon(lm)[1] and new.lower() not in _lexicon(lm)[1] and not (
                letters.startswith("'") and _known(lm, new)):
            return None
        return "tok" if len(new) <= MAX_WORD_CHARS and r.used + n_syllables(new) <= r.budget else None
    if starts_word:
        if strict and (not closes_ok or (_lexicon(lm)[1] and letters.lower() not in _lexicon(lm)[1])):
            return None
        return "tok" if r.used + cur + n_syllables(letters) <= r.budget else None
    if k == PUNCT:
        if not (closes_ok and r.text.strip() and r.punct_run < 1 and r.used + cur <= r.budget):
            return None
        # a hyphen or dash must be followed by a word: only while a syllable is left
        hyphen = "-" in lm.texts[t]
        return "tok" if not hyphen or r.used + cur < r.budget else None
    if k == NEWLINE:
        ok = closes_ok and r.end_ids is None and r.text.strip() and r.used + cur == r.budget
        return "tok" if ok else None
    return None


def _apply(lm: LyricLM, r: _Row, t: int, text: str) -> None:
    k = lm.kinds[t]
    if k == CONT and r.word:
        r.word += lm.letters[t]
    elif k in (START, CONT):
        r.used += n_syllables(r.word) if r.word else 0
        r.word = lm.letters[t]
        r.punct_run = 0
    elif k == PUNCT:
        r.used += n_syllables(r.word) if r.word else 0
        r.word = ""
        r.punct_run += 1
    if k == NEWLINE:
        r.used += n_syllables(r.word) if r.word else 0
        r.word = ""
        r.done = True
    else:
        r.text += text


def _fallback(lm: LyricLM, r: _Row, order: np.ndarray) -> tuple[int, str]:
    cur = n_syllables(r.word) if r.word else 0
    if r.used + cur == r.budget:
        if r.end_ids is not None:
            return r.end_ids[0], "finish"
        return lm.newline_id, "tok"
    for strict in (True, False):
        for t in order:
            a = _allowed(lm, r, int(t), strict)
            if a:
                return int(t), a
    raise RuntimeError("no token keeps the line within its syllable budget")  # unreachable


@torch.no_grad()
def decode_lines(lm: LyricLM, prompts: Sequence[list[int]], rows: Sequence[_Row], gen: torch.Generator,
                 temperature: float, top_p: float) -> list[_Row]:
    """Sample one line per row, each within its syllable budget, all rows as one batch."""
    model = lm.model
    pad = lm.tok.pad_token_id if lm.tok.pad_token_id is not None else 0
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    att = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        att[i, width - len(p):] = 1
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    dev = lm.device
    out = model(input_ids=ids.to(dev), attention_mask=att.to(dev), position_ids=pos.to(dev), use_cache=True)
    past, logits = out.past_key_values, out.logits[:, -1, :]
    texts = lm.texts
    max_steps = 12 * max(r.budget for r in rows) + 40
    last = pos[:, -1:]
    for _ in range(max_steps):
        if all(r.done for r in rows):
            break
        lp = torch.log_softmax(logits.float() / max(temperature, 1e-4), dim=-1).cpu()
        scores = lp + _stress_bonus(lm, rows)
        if top_p < 1.0:
            sp, si = torch.sort(lp, dim=-1, descending=True)
            outside = (sp.exp().cumsum(-1) - sp.exp()) > top_p
            scores = scores - torch.zeros_like(scores).scatter_(1, si, outside.float() * 1e4)
        u = torch.rand(scores.shape, generator=gen).clamp_(1e-12, 1 - 1e-12)
        scores = scores - torch.log(-torch.log(u))
        top = torch.topk(scores, 64, dim=-1).indices.numpy()
        nxt = []
        for i, r in enumerate(rows):
            if r.done:
                nxt.append(pad)
                continue
            if r.forced:
                t, a = r.forced.popleft(), "tok"
            else:
                t, a = next(((int(c), a) for c in top[i] if (a := _allowed(lm, r, int(c)))), (None, None))
                if t is None:
                    t, a = _fallback(lm, r, torch.argsort(scores[i], descending=True).numpy())
            if a == "finish":  # the end word's first token starts a word like any other
                r.forced.extend(r.end_ids[1:])
            _apply(lm, r, t, texts[t])
            r.logprob += float(lp[i, t])
            r.n_tokens += 1
            nxt.append(t)
        att = torch.cat([att, torch.ones((len(rows), 1), dtype=torch.long)], dim=1)
        last = last + 1
        out = model(input_ids=torch.tensor(nxt, device=dev)[:, None], attention_mask=att.to(dev),
                    position_ids=last.to(dev), past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :]
    return list(rows)


# ----------------------------------------------------------------------------- figures
def stress_figures(line_texts: Sequence[str], strong: Sequence[bool]) -> dict:
    """How the syllables' stresses meet the beats: `alignment` is the share of syllables where
    stressed <=> on a beat; `stressed_on_beat` the share of stressed syllables on a beat."""
    syl = [s for t in line_texts for s in line_syllables(t)]
    n = min(len(syl), len(strong))
    stressed = [syl[i].stress >= 1 for i in range(n)]
    agree = sum(stressed[i] == strong[i] for i in range(n))
    on = sum(1 for i in range(n) if stressed[i] and strong[i])
    return {"alignment": agree / n if n else 0.0,
            "stressed_on_beat": on / max(1, sum(stressed))}


def _best_rows(cands: Sequence[_Row], strong: Sequence[bool]) -> _Row:
    def key(r: _Row) -> tuple[float, float]:
        return stress_figures([r.text], strong)["alignment"], r.logprob / max(1, r.n_tokens)

    return max(cands, key=key)


def _theme_words(theme: str | None) -> list[str]:
    if not theme:
        return []
    ws = [w.lower() for w in words(theme) if w.lower() not in D.STOPWORDS]
    return ws[:4] or [w.lower() for w in words(theme)][:4]


def _word_tokens(lm: LyricLM, word: str) -> list[int]:
    cache = lm.__dict__.setdefault("_word_tokens", {})
    if word not in cache:
        cache[word] = lm.encode(" " + word)
    return cache[word]


def _first_token(lm: LyricLM, word: str) -> int:
    return _word_tokens(lm, word)[0]


@torch.no_grad()
def _end_logprobs(lm: LyricLM, prompt: list[int], temperature: float) -> torch.Tensor | None:
    """The shipped model's log-probabilities for the word it would plan after the count token."""
    if not lm.planned:
        return None
    logits = lm.model(input_ids=torch.tensor([prompt], device=lm.device)).logits[0, -1].float().cpu()
    return torch.log_softmax(logits / max(temperature, 1e-4), -1)


def _choose_end(lm: LyricLM, lp: torch.Tensor | None, cands: list[tuple[str, int]],
                gen: torch.Generator) -> str | None:
    """A sample among candidate end words: by the model's plan when it has one (first token of
    the word), else by the words' frequencies."""
    if not cands:
        return None
    if lp is not None:  # the plan's first token stands for the whole word only for one-token words
        single = [(w, c) for w, c in cands if len(_word_tokens(lm, w)) == 1]
        cands = single or cands
    freq = torch.log(torch.tensor([float(c) for _, c in cands]))
    if lp is not None:
        score = lp[[_first_token(lm, w) for w, _ in cands]] + 0.1 * freq
    else:
        score = 0.5 * freq
    u = torch.rand(len(cands), generator=gen).clamp_(1e-12, 1 - 1e-12)
    return cands[int(torch.argmax(score - torch.log(-torch.log(u))))][0]


@dataclass
class LyricResult:
    lines: list[str]
    end_words: list[str]
    syllable_fit: float
    rhyme_fit: float | None
    alignment: float
    stressed_on_beat: float


def write_lines(lm: LyricLM, targets: Sequence[int], strong: Sequence[Sequence[bool]], *,
                theme: str | None, rhyme: str | None, variations: int, candidates: int, seed: int,
                temperature: float, top_p: float, idx: RhymeIndex,
                on_progress: Callable[[float], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> list[LyricResult]:
    """`variations` sets of lines, line i with exactly `targets[i]` syllables. `on_progress`
    gets the share of lines done after each line; `cancelled()` true stops with InterruptedError."""
    gen = torch.Generator().manual_seed(seed)
    groups = rhyme_scheme(rhyme, len(targets))
    header = lm.encode(lm.prompt_header(_theme_words(theme)))
    if lm.tok.bos_token_id is not None and not lm.planned and (not header or header[0] != lm.tok.bos_token_id):
        header = [lm.tok.bos_token_id, *header]
    done: list[list[tuple[str, str, int]]] = [[] for _ in range(variations)]  # (text, end, syl)
    group_word: list[dict] = [{} for _ in range(variations)]
    for li, T in enumerate(targets):
        if cancelled is not None and cancelled():
            raise InterruptedError("generation cancelled")
        prompts, rows, owners = [], [], []
        for v in range(variations):
            ctx = header + [i for text, end, n in done[v][-CONTEXT_LINES:]
                            for i in lm.encode(lm.done_line(n, end, text))]
            g = groups[li]
            first = g is not None and g not in group_word[v]
            max_end = max(1, T - 1)
            lp = _end_logprobs(lm, ctx + lm.encode(lm.plan(T, None)), temperature)
            if g is not None and not first:
                a = group_word[v][g]
                pool = idx.candidates(max_end, rhyme_with=a[0], avoid=a)
            elif lm.planned:
                pool = idx.candidates(max_end, avoid=[e for _, e, _ in done[v]])
            else:
                pool = []
            if not pool and lm.planned:  # no rhyme for the group's word: any good end word
                pool = idx.candidates(max_end, avoid=[e for _, e, _ in done[v]])
            for _ in range(candidates):
                end = _choose_end(lm, lp, pool, gen)
                if end is None:
                    budget, end_ids = T, None
                else:
                    budget, end_ids = T - n_syllables(end), lm.encode(" " + end) + [lm.newline_id]
                prompts.append(ctx + lm.encode(lm.plan(T, end)))
                rows.append(_Row(budget=budget, end_ids=end_ids, strong=tuple(strong[li])))
                owners.append(v)
        rows = decode_lines(lm, prompts, rows, gen, temperature, top_p)
        for v in range(variations):
            best = _best_rows([r for r, o in zip(rows, owners) if o == v], strong[li])
            text = " ".join(best.text.split())
            ws = words(text)
            end = ws[-1].lower() if ws else ""
            done[v].append((text, end, T))
            g = groups[li]
            if g is not None:
                group_word[v].setdefault(g, [])
                group_word[v][g].append(end)
        if on_progress is not None:
            on_progress((li + 1) / len(targets))
    results = []
    for v in range(variations):
        lines = [t for t, _, _ in done[v]]
        fit = sum(len(line_syllables(t)) == T for t, T in zip(lines, targets)) / len(targets)
        pairs = [(a, b) for ws in group_word[v].values() for a, b in zip(ws, ws[1:])]
        rfit = sum(idx.rhymes(a, b) for a, b in pairs) / len(pairs) if pairs else None
        flat = [s for st in strong for s in st]
        fig = stress_figures(lines, flat)
        results.append(LyricResult(lines, [e for _, e, _ in done[v]], fit, rfit, fig["alignment"],
                                   fig["stressed_on_beat"]))
    return results


def lyrics_for(lm: LyricLM | Callable[[], LyricLM], clip: Clip | Take, *, model_id: str = "",
               threads: int | None = None, theme: str | None = None, rhyme: str | None = "ABAB",
               variations: int | None = None, seed: int | None = None, temperature: float | None = None,
               top_p: float | None = None, candidates: int | None = None, track: int | None = None,
               on_progress: Callable[[float], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> list[Take]:
    """Lyrics for the melody of `clip` (a Clip or Take); see `Studio.lyrics_for`. `lm`: the
    lyric model, or a function that loads it once the request has passed its checks;
    `model_id`: the music model the takes name; `threads`: torch CPU threads to decode with
    (None: as they are). The parameters' ranges and defaults: `musegen.params` ("lyrics")."""
    t0 = time.perf_counter()
    parent = clip.id if isinstance(clip, Take) else None
    base: Clip = clip.clip if isinstance(clip, Take) else clip
    if not isinstance(base, Clip):
        raise ParameterError(f"lyrics_for needs a Clip or a Take, got {type(clip).__name__}")
    given = check("lyrics", {"theme": theme, "rhyme": rhyme, "variations": variations, "seed": seed,
                             "temperature": temperature, "top_p": top_p, "candidates": candidates,
                             "track": track})
    variations, candidates, temperature, top_p = (
        given.get(k, default("lyrics", k)) for k in ("variations", "candidates", "temperature", "top_p"))
    if track is None:
        track = melody_track(base)
    elif not track < len(base.tracks):
        raise ParameterError(f"track must be in 0..{len(base.tracks) - 1}, got {track}")
    seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))
    ons = onsets_of(base, track)
    groups = phrases(base, track)
    if len(groups) > 64:
        raise ParameterError(f"the melody has {len(groups)} phrases; lyrics_for takes at most 64 (cut the clip)")
    flags = strong_flags(base, [s for s, _ in ons])
    targets = [len(g) for g in groups]
    strong = [[flags[i] for i in g] for g in groups]
    if callable(lm) and not isinstance(lm, LyricLM):
        lm = lm()
    idx = _rhyme_index(lm)
    with torch_threads(threads):
        results = write_lines(lm, targets, strong, theme=theme, rhyme=rhyme, variations=int(variations),
                              candidates=int(candidates), seed=seed, temperature=float(temperature),
                              top_p=float(top_p), idx=idx, on_progress=on_progress, cancelled=cancelled)
    seconds = time.perf_counter() - t0
    takes = []
    for v, res in enumerate(results):
        text = " ".join(res.lines)
        out = attach_lyrics(base, text, track)
        params = {"theme": theme, "rhyme": rhyme, "temperature": temperature, "top_p": top_p,
                  "candidates": candidates, "track": track, "variation": v, "phrases": targets,
                  "lines": res.lines, "end_words": res.end_words,
                  "figures": {"syllable_fit": res.syllable_fit, "rhyme_fit": res.rhyme_fit,
                              "stress_alignment": round(res.alignment, 4),
                              "stressed_on_beat": round(res.stressed_on_beat, 4)},
                  "lyric_model": lm.model_id}
        takes.append(Take(clip=out, operation="lyrics", params=params, seed=seed + v,
                          model_id=model_id, parent=parent, bars=(0, out.n_bars),
                          seconds=seconds))
    return takes


def _rhyme_index(lm: LyricLM) -> RhymeIndex:
    idx = getattr(lm, "_rhyme_index", None)
    if idx is None:
        freq = lm.word_freq
        if not freq:  # a foreign model: use the shipped model's word list when it is there
            import json

            from musegen.lyrics.lm import SHIPPED

            p = SHIPPED / "words.json"
            freq = json.loads(p.read_text()) if p.exists() else {}
        idx = RhymeIndex(freq)
        lm._rhyme_index = idx  # type: ignore[attr-defined]
    return idx
