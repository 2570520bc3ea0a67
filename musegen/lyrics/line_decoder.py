"""Constrained decoding of lyric lines: each line has exactly its phrase's syllable count.

The end word is chosen first (`_choose_end`): by the model's plan when it has one (the shipped
model reads `<|sN|> word<|sep|>` before each line), else by the words' frequencies, from the
rhyme pool `musegen.lyrics.rhyme` gives. The line is then sampled token by token (Gumbel-max
over the allowed tokens, which is exact sampling from the renormalised masked distribution).
A token is allowed (`_allowed`) only if the words it completes still fit the budget: a word
piece may grow the current word only while its syllables fit, a new word only when at least
one syllable is left, and the end word (then a line break) exactly when the budget is used up.
The invariant "used + current word <= budget" holds after every token, so a line can always be
finished. Word starts whose stressed syllables would land on beats get a soft bonus
(`_stress_bonus`); of several candidates per line the one whose stresses best meet the beats
is kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from musegen.generate import draw
from musegen.lyrics import data as D
from musegen.lyrics.lm import BANNED, CONT, NEWLINE, PUNCT, START, LyricLM, n_syllables
from musegen.lyrics.phrasing import stress_figures
from musegen.lyrics.rhyme import RhymeIndex, rhyme_index, rhyme_scheme
from musegen.lyrics.syllables import _analyse, line_syllables, words

MAX_WORD_CHARS = 18
CONTEXT_LINES = 6
STRESS_WEIGHT = 1.5  # nats added to a word start whose stresses all meet the beats (see _stress_bonus)


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


# ----------------------------------------------------------------------------- stress
def _stress_table(lm: LyricLM) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: the stresses of the word its letters spell (1 stressed, 0 not, -1 past the
    word; first 4 syllables) and a mask of word-start tokens."""
    cached = lm.derived.get("stress_table")
    if cached is None:
        table = torch.full((len(lm.kinds), 4), -1, dtype=torch.int8)
        starts = torch.zeros(len(lm.kinds), dtype=torch.bool)
        for t, (k, letters) in enumerate(zip(lm.kinds, lm.letters)):
            if k in (START, CONT) and letters.strip("'"):
                st = [min(1, s.stress) for s in _analyse(letters.strip("'"))][:4]
                table[t, : len(st)] = torch.tensor(st, dtype=torch.int8)
                starts[t] = True
        cached = lm.derived["stress_table"] = (table, starts)
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
    cached = lm.derived.get("lexicon")
    if cached is None:
        known = frozenset(w for w in rhyme_index(lm).freq if w.replace("'", "").isalpha())
        prefixes = frozenset(w[:i] for w in known for i in range(1, len(w) + 1))
        cached = lm.derived["lexicon"] = (known, prefixes)
    return cached


def _known(lm: LyricLM, word: str) -> bool:
    known, _ = _lexicon(lm)
    w = word.lower().strip("'")
    if not known or w in known:
        return True
    base, _, tail = w.rpartition("'")  # star's, o'er-like forms, call'd
    return bool(base) and base in known and tail in ("s", "d", "ll", "st", "t", "re", "ve")



# ----------------------------------------------------------------------------- which tokens fit
def _allowed(lm: LyricLM, r: _Row, t: int, strict: bool = True) -> str | None:
    """'tok' (an ordinary token), 'finish' (start the forced end word), or None.

    The syllable budget is always enforced. `strict` adds that words are spelled toward a
    known word and closed only when they are one; the fallback drops it if nothing else fits."""
    k = lm.kinds[t]
    if k == BANNED:
        return None
    cur = n_syllables(r.word) if r.word else 0
    closes_ok = not strict or not r.word or _known(lm, r.word)
    if _starts_end_word(r, t, cur):
        return "finish" if closes_ok else None
    if k == CONT and r.word:
        ok = _grows_word(lm, r, lm.letters[t], strict)
    elif k in (START, CONT):
        ok = _starts_word(lm, r, k, lm.letters[t], cur, closes_ok, strict)
    elif k == PUNCT:
        ok = _punct_fits(lm, r, t, cur, closes_ok)
    else:
        ok = k == NEWLINE and _ends_line(r, cur, closes_ok)
    return "tok" if ok else None


def _starts_end_word(r: _Row, t: int, cur: int) -> bool:
    """`t` is the forced end word's first token and the free part's budget is used up."""
    return r.end_ids is not None and t == r.end_ids[0] and r.used + cur == r.budget


def _grows_word(lm: LyricLM, r: _Row, letters: str, strict: bool) -> bool:
    """A word piece that continues the current word: while its syllables fit (and, `strict`,
    while it spells toward a known word, or ends one with an apostrophe form)."""
    new = r.word + letters
    if strict and _lexicon(lm)[1] and new.lower() not in _lexicon(lm)[1] and not (
            letters.startswith("'") and _known(lm, new)):
        return False
    return len(new) <= MAX_WORD_CHARS and r.used + n_syllables(new) <= r.budget


def _starts_word(lm: LyricLM, r: _Row, k: int, letters: str, cur: int, closes_ok: bool,
                 strict: bool) -> bool:
    """A token that starts a new word: while at least its syllables are left (and, `strict`,
    once the current word is a known one and the new one begins like one)."""
    # a word piece without a space starts a word at the line's start, or right after a hyphen
    # ("water-scented": `words()` counts the two halves as two words, and so does the budget)
    if k == CONT and r.text.strip() and not r.text.endswith("-"):
        return False
    if strict and (not closes_ok or (_lexicon(lm)[1] and letters.lower() not in _lexicon(lm)[1])):
        return False
    return r.used + cur + n_syllables(letters) <= r.budget


def _punct_fits(lm: LyricLM, r: _Row, t: int, cur: int, closes_ok: bool) -> bool:
    """Punctuation: once per gap between words, after some text, within the budget."""
    if not (closes_ok and r.text.strip() and r.punct_run < 1 and r.used + cur <= r.budget):
        return False
    # a hyphen or dash must be followed by a word: only while a syllable is left
    return "-" not in lm.texts[t] or r.used + cur < r.budget


def _ends_line(r: _Row, cur: int, closes_ok: bool) -> bool:
    """A line break ends a line without a forced end word exactly when its budget is used."""
    return bool(closes_ok and r.end_ids is None and r.text.strip() and r.used + cur == r.budget)


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


# ----------------------------------------------------------------------------- decoding a batch of lines
def _left_padded(prompts: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), the prompts right-aligned in one batch."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    att = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        att[i, width - len(p):] = 1
    return ids, att


def _pick(lm: LyricLM, r: _Row, top: np.ndarray, scores: torch.Tensor) -> tuple[int, str]:
    """The row's next token: a forced one, else the best-scored of the top drawn that fits,
    else the fallback's."""
    if r.forced:
        return r.forced.popleft(), "tok"
    t, a = next(((int(c), a) for c in top if (a := _allowed(lm, r, int(c)))), (None, None))
    if t is None:
        t, a = _fallback(lm, r, torch.argsort(scores, descending=True).numpy())
    return t, a


@torch.no_grad()
def decode_lines(lm: LyricLM, prompts: Sequence[list[int]], rows: Sequence[_Row], gen: torch.Generator,
                 temperature: float, top_p: float) -> list[_Row]:
    """Sample one line per row, each within its syllable budget, all rows as one batch."""
    model = lm.model
    pad = lm.tok.pad_token_id if lm.tok.pad_token_id is not None else 0
    ids, att = _left_padded(prompts, pad)
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
            scores = scores - draw.outside_nucleus(lp, top_p).float() * 1e4
        scores = scores + draw.gumbel(scores.shape, gen)
        top = torch.topk(scores, 64, dim=-1).indices.numpy()
        nxt = []
        for i, r in enumerate(rows):
            if r.done:
                nxt.append(pad)
                continue
            t, a = _pick(lm, r, top[i], scores[i])
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


def _best_rows(cands: Sequence[_Row], strong: Sequence[bool]) -> _Row:
    def key(r: _Row) -> tuple[float, float]:
        return stress_figures([r.text], strong)["alignment"], r.logprob / max(1, r.n_tokens)

    return max(cands, key=key)


# ----------------------------------------------------------------------------- end words
def _theme_words(theme: str | None) -> list[str]:
    if not theme:
        return []
    ws = [w.lower() for w in words(theme) if w.lower() not in D.STOPWORDS]
    return ws[:4] or [w.lower() for w in words(theme)][:4]


def _word_tokens(lm: LyricLM, word: str) -> list[int]:
    cache = lm.derived.setdefault("word_tokens", {})
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
    return cands[draw.gumbel_max(score, gen)][0]



# ----------------------------------------------------------------------------- sets of lines
@dataclass
class LyricResult:
    lines: list[str]
    end_words: list[str]
    syllable_fit: float
    rhyme_fit: float | None
    alignment: float
    stressed_on_beat: float


@dataclass
class _Verse:
    """One variation's lines so far, (text, end word, syllables) each, and the end words of
    each rhyme group."""

    done: list[tuple[str, str, int]] = field(default_factory=list)
    group_word: dict[tuple[int, str], list[str]] = field(default_factory=dict)

    def context(self, lm: LyricLM, header: list[int]) -> list[int]:
        return header + [i for text, end, n in self.done[-CONTEXT_LINES:]
                         for i in lm.encode(lm.done_line(n, end, text))]

    def end_pool(self, lm: LyricLM, idx: RhymeIndex, g: tuple[int, str] | None,
                 max_syl: int) -> list[tuple[str, int]]:
        """Candidate end words: rhymes of the group's first word, else (the shipped model, which
        plans its end words) any good end word not used yet; empty for a free line of a
        model without plans."""
        if g is not None and g in self.group_word:
            a = self.group_word[g]
            pool = idx.candidates(max_syl, rhyme_with=a[0], avoid=a)
            if pool or not lm.planned:
                return pool
        elif not lm.planned:
            return []
        # an opening line, or no rhyme for the group's word: any good end word
        return idx.candidates(max_syl, avoid=[e for _, e, _ in self.done])

    def add(self, text: str, syllables: int, g: tuple[int, str] | None) -> None:
        ws = words(text)
        end = ws[-1].lower() if ws else ""
        self.done.append((text, end, syllables))
        if g is not None:
            self.group_word.setdefault(g, []).append(end)

    def result(self, targets: Sequence[int], strong: Sequence[Sequence[bool]], idx: RhymeIndex) -> LyricResult:
        lines = [t for t, _, _ in self.done]
        fit = sum(len(line_syllables(t)) == T for t, T in zip(lines, targets)) / len(targets)
        pairs = [(a, b) for ws in self.group_word.values() for a, b in zip(ws, ws[1:])]
        rfit = sum(idx.rhymes(a, b) for a, b in pairs) / len(pairs) if pairs else None
        fig = stress_figures(lines, [s for st in strong for s in st])
        return LyricResult(lines, [e for _, e, _ in self.done], fit, rfit, fig["alignment"],
                           fig["stressed_on_beat"])


def _header(lm: LyricLM, theme: str | None) -> list[int]:
    """The stanza's opening tokens: the theme words, after BOS for a model without plans."""
    header = lm.encode(lm.prompt_header(_theme_words(theme)))
    if lm.tok.bos_token_id is not None and not lm.planned and (not header or header[0] != lm.tok.bos_token_id):
        header = [lm.tok.bos_token_id, *header]
    return header


def _candidate_rows(lm: LyricLM, verse: _Verse, header: list[int], T: int, pool: list[tuple[str, int]],
                    strong: Sequence[bool], candidates: int, temperature: float,
                    gen: torch.Generator) -> tuple[list[list[int]], list[_Row]]:
    """Prompts and rows of `candidates` attempts at the verse's next line of `T` syllables,
    each with its own sampled end word."""
    ctx = verse.context(lm, header)
    lp = _end_logprobs(lm, ctx + lm.encode(lm.plan(T, None)), temperature)
    prompts, rows = [], []
    for _ in range(candidates):
        end = _choose_end(lm, lp, pool, gen)
        if end is None:
            budget, end_ids = T, None
        else:
            budget, end_ids = T - n_syllables(end), lm.encode(" " + end) + [lm.newline_id]
        prompts.append(ctx + lm.encode(lm.plan(T, end)))
        rows.append(_Row(budget=budget, end_ids=end_ids, strong=tuple(strong)))
    return prompts, rows


def write_lines(lm: LyricLM, targets: Sequence[int], strong: Sequence[Sequence[bool]], *,
                theme: str | None, rhyme: str | None, variations: int, candidates: int, seed: int,
                temperature: float, top_p: float, idx: RhymeIndex,
                on_progress: Callable[[float], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> list[LyricResult]:
    """`variations` sets of lines, line i with exactly `targets[i]` syllables. `on_progress`
    gets the share of lines done after each line; `cancelled()` true stops with InterruptedError."""
    gen = torch.Generator().manual_seed(seed)
    groups = rhyme_scheme(rhyme, len(targets))
    header = _header(lm, theme)
    verses = [_Verse() for _ in range(variations)]
    for li, T in enumerate(targets):
        if cancelled is not None and cancelled():
            raise InterruptedError("generation cancelled")
        prompts, rows, owners = [], [], []
        for v, verse in enumerate(verses):  # every variation's candidates decode as one batch
            pool = verse.end_pool(lm, idx, groups[li], max(1, T - 1))
            p, r = _candidate_rows(lm, verse, header, T, pool, strong[li], candidates, temperature, gen)
            prompts += p
            rows += r
            owners += [v] * len(r)
        rows = decode_lines(lm, prompts, rows, gen, temperature, top_p)
        for v, verse in enumerate(verses):
            best = _best_rows([r for r, o in zip(rows, owners) if o == v], strong[li])
            verse.add(" ".join(best.text.split()), T, groups[li])
        if on_progress is not None:
            on_progress((li + 1) / len(targets))
    return [verse.result(targets, strong, idx) for verse in verses]
