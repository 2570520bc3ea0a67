"""Constrained decoding of lyric lines: each line has exactly its phrase's syllable count.

The end word is chosen first (`_choose_end`): by the model's plan when it has one (the shipped
model reads `<|sN|> word<|sep|>` before each line), else by the words' frequencies, from the
rhyme pool `musegen.lyrics.rhyme` gives. The line is then sampled token by token (Gumbel-max
over the allowed tokens, which is exact sampling from the renormalised masked distribution).
A token is allowed (`_allowed`) only if the words it completes still fit the budget: a word
piece may grow the current word only while its syllables fit, a new word only when at least
one syllable is left, and the end word (then a line break) exactly when the budget is used up.
The invariant "used + current word <= budget" holds after every token, so a line can always be
finished.

What a songwriter would strike is never emitted: a word is closed only when it is a real word
(`musegen.lyrics.lexicon`: no cut-off words, no stray letters, no OCR junk) and grows only while
a real completion still fits the budget; a word may not repeat the one before it ("sea, sea").
A candidate that cannot be finished within these rules is dropped, and a line whose candidates
all failed is planned again with other end words (`write_lines`).

Soft preferences reorder the sampling without touching those rules: word starts whose stressed
syllables land on the melody's strong notes get a bonus by the notes' metric weights
(`_stress_bonus`, stronger on dense melodies), and the first tokens of the theme's words and
their corpus associates a small one (`musegen.lyrics.theme`). Of the candidates per line the
kept one has the best score of: the model's own length-normalised log-likelihood of the line
(untempered, the grammar judge), how its stresses meet the beats, and whether it carries the
theme in a stanza that has not yet.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from musegen.generate import draw
from musegen.lyrics import data as D
from musegen.lyrics.lexicon import Lexicon
from musegen.lyrics.lm import BANNED, CONT, NEWLINE, PUNCT, START, LyricLM, n_syllables
from musegen.lyrics.phrasing import ON_BEAT, stress_figures
from musegen.lyrics.rhyme import RhymeIndex, rhyme_index, rhyme_scheme
from musegen.lyrics.syllables import _analyse, is_function_word, line_syllables, words
from musegen.lyrics.theme import carries_theme, theme_set

MAX_WORD_CHARS = 18
CONTEXT_LINES = 6
STRESS_WEIGHT = 5.0  # nats added to a word start whose stresses all meet the beats (see _stress_bonus)
DENSE_STRESS_WEIGHT = 20.0  # the same on dense lines (>= 3 syllables per beat: few notes on beats)
THEME_WEIGHT = 1.0  # nats added to the first token of a theme word (associates: by their weight)
THEME_END_WEIGHT = 4.0  # the same for a theme word as a rhyme-group's end word
SELECT_STRESS = 10.0  # candidate choice: nats of mean log-likelihood one unit of stress fit is worth
SELECT_THEME = 1.0  # ... and carrying the theme in a stanza that has not yet
REPLAN_ROUNDS = 3  # a line whose candidates all failed is decoded again with other end words


@dataclass
class _Row:
    budget: int  # syllables of the free part (the line minus its end word)
    end_ids: list[int] | None  # " endword" + newline, forced once the budget is used
    end_word: str = ""
    used: int = 0
    word: str = ""
    text: str = ""
    punct_run: int = 0
    forced: deque = field(default_factory=deque)
    done: bool = False
    logprob: float = 0.0
    raw_logprob: float = 0.0  # the same untempered: the model's judgement of the line
    n_tokens: int = 0
    weights: tuple[float, ...] = ()  # per syllable of the line: its note's metric weight (1 downbeat)
    dense: bool = False  # the line's notes are dense (stress matters more, see _stress_bonus)
    prev: str = ""  # the last closed word (no immediate repetition)
    failed: bool = False  # no token kept the rules: the candidate is dropped
    strict: bool = True  # the word rules on (off only for a line every re-plan failed)


# ----------------------------------------------------------------------------- stress
def _stress_table(lm: LyricLM) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: the stresses of the word its letters spell as sung (1 stressed, 0 not, -1
    past the word; first 4 syllables; a one-syllable function word unstressed, as
    `syllables.sung_stresses` reads it) and a mask of word-start tokens."""
    cached = lm.derived.get("stress_table")
    if cached is None:
        table = torch.full((len(lm.kinds), 4), -1, dtype=torch.int8)
        starts = torch.zeros(len(lm.kinds), dtype=torch.bool)
        for t, (k, letters) in enumerate(zip(lm.kinds, lm.letters)):
            if k in (START, CONT) and letters.strip("'"):
                word = letters.strip("'")
                # a function word is sung unstressed ("of", "to": stressed in CMU's citation form)
                st = [0] if is_function_word(word) else [min(1, s.stress) for s in _analyse(word)][:4]
                table[t, : len(st)] = torch.tensor(st, dtype=torch.int8)
                starts[t] = True
        cached = lm.derived["stress_table"] = (table, starts)
    return cached


def _stress_bonus(lm: LyricLM, rows: Sequence[_Row]) -> torch.Tensor:
    """A soft push toward words whose stressed syllables land on strong notes: for each row at
    a word boundary, on every word-start token, the weight (STRESS_WEIGHT, DENSE_STRESS_WEIGHT on
    dense lines) x the mean over the word's first syllables of: for a stressed syllable +1 on a
    beat (metric weight w >= ON_BEAT), else -(1.3 - w); for an unstressed one -0.3 on a beat,
    else +0.3 (the count and rhyme constraints stay hard; this only reorders)."""
    table, starts = _stress_table(lm)
    bonus = torch.zeros((len(rows), len(lm.kinds)))
    for i, r in enumerate(rows):
        if r.done or r.forced or not r.weights:
            continue
        pos = r.used + (n_syllables(r.word) if r.word else 0)  # where a new word's first syllable falls
        ahead = r.weights[pos: pos + 4]
        if not ahead:
            continue
        w = torch.full((4,), -1.0)
        w[: len(ahead)] = torch.tensor(ahead, dtype=torch.float32)
        valid = (table >= 0) & (w >= 0)
        on = w >= ON_BEAT
        stressed = torch.where(on, torch.ones(()), w - 1.3)
        unstressed = torch.where(on, torch.full((), -0.3), torch.full((), 0.3))
        score = torch.where(table == 1, stressed, unstressed) * valid
        fit = score.sum(-1) / valid.sum(-1).clamp(min=1).float()
        mask = starts & (lm.kinds_tensor == START if r.word or r.text.strip() else starts)
        weight = DENSE_STRESS_WEIGHT if r.dense else STRESS_WEIGHT
        bonus[i] = torch.where(mask, weight * fit, torch.zeros(()))
    return bonus


def _theme_bonus(lm: LyricLM, themes: dict[str, float]) -> torch.Tensor | None:
    """THEME_WEIGHT x weight on the first token of each theme word and associate (a
    one-token word gets it whole; a longer word's first piece half of it)."""
    if not themes:
        return None
    key = ("theme_bonus", tuple(sorted(themes.items())))
    cached = lm.derived.get("theme_bonus")
    if cached is not None and cached[0] == key:
        return cached[1]
    bonus = torch.zeros(len(lm.kinds))
    lex = lexicon(lm)
    for word, wt in themes.items():
        if word not in lex:
            continue
        for form in (word, word.capitalize()):
            ids = _word_tokens(lm, form)
            b = THEME_WEIGHT * wt * (1.0 if len(ids) == 1 else 0.5)
            bonus[ids[0]] = max(float(bonus[ids[0]]), b)
    lm.derived["theme_bonus"] = (key, bonus)
    return bonus


def lexicon(lm: LyricLM) -> Lexicon:
    """The real words of the model's word list (`musegen.lyrics.lexicon`), built once per model
    (the shipped list for foreign models)."""
    cached = lm.derived.get("lexicon")
    if cached is None:
        cached = lm.derived["lexicon"] = Lexicon.from_freq(rhyme_index(lm).freq, n_syllables)
    return cached


def _known(lm: LyricLM, word: str) -> bool:
    """A real word (or a known word with an apostrophe ending: star's, call'd)."""
    return lexicon(lm).knows(word)


def _syllables_so_far(lm: LyricLM, word: str) -> int:
    """Syllables the current (maybe unfinished) word will take at least: its own count once it
    is a known word, else the fewest of a known word it can still become."""
    if not word:
        return 0
    if _known(lm, word):
        return n_syllables(word)
    return lexicon(lm).min_syllables.get(word.lower(), n_syllables(word))


_DETERMINERS = frozenset("a an the my thy his her our their your its".split())
_NOT_AFTER_DETERMINER = _DETERMINERS | frozenset("of and or but to in on at by for with from as is was".split())


def _struck(prev: str, word: str) -> bool:
    """`word` after `prev` would be struck: the word before again ("sea, sea"), or a determiner
    followed by a determiner or a function word ("the a", "the of")."""
    w, p = word.lower().strip("'"), prev.lower().strip("'")
    # a compound counts by its parts: "sea" then "sea-wept" repeats as much as "sea, sea"
    first, last = w.split("-")[0], p.split("-")[-1]
    return bool(w) and (w == p or (bool(first) and first == last)
                        or (p in _DETERMINERS and w in _NOT_AFTER_DETERMINER))


def _repeats(r: _Row, word: str) -> bool:
    return _struck(r.prev, word)


# ----------------------------------------------------------------------------- which tokens fit
def _allowed(lm: LyricLM, r: _Row, t: int, strict: bool = True) -> str | None:
    """'tok' (an ordinary token), 'finish' (start the forced end word), or None.

    The syllable budget is always enforced, and words are spelled toward a real word, closed only
    when they are one and never the word before again (`strict=False`, for tests only, drops
    the word rules)."""
    k = lm.kinds[t]
    if k == BANNED:
        return None
    cur = _syllables_so_far(lm, r.word) if strict else (n_syllables(r.word) if r.word else 0)
    closes_ok = not strict or not r.word or (_known(lm, r.word) and not _repeats(r, r.word))
    if _starts_end_word(r, t, cur):
        last = r.word or r.prev  # the end word may not repeat the word before it either
        if strict and r.end_word and _struck(last, r.end_word):
            return None
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
    if not strict:
        return len(new) <= MAX_WORD_CHARS and r.used + n_syllables(new) <= r.budget
    if not lexicon(lm).is_prefix(new) and not (letters.startswith("'") and _known(lm, new)):
        return False
    return len(new) <= MAX_WORD_CHARS and r.used + _syllables_so_far(lm, new) <= r.budget


def _starts_word(lm: LyricLM, r: _Row, k: int, letters: str, cur: int, closes_ok: bool,
                 strict: bool) -> bool:
    """A token that starts a new word: while at least its syllables are left (and, `strict`,
    once the current word is a known one and the new one begins like one)."""
    # a word piece without a space starts a word at the line's start, or right after a hyphen
    # ("water-scented": `words()` counts the two halves as two words, and so does the budget)
    if k == CONT and r.text.strip() and not r.text.endswith("-"):
        return False
    if not strict:
        return r.used + cur + n_syllables(letters) <= r.budget
    if not closes_ok or not lexicon(lm).is_prefix(letters):
        return False
    return r.used + cur + _syllables_so_far(lm, letters) <= r.budget


def _punct_fits(lm: LyricLM, r: _Row, t: int, cur: int, closes_ok: bool) -> bool:
    """Punctuation: once per gap between words, after some text, within the budget."""
    if not (closes_ok and r.text.strip() and r.punct_run < 1 and r.used + cur <= r.budget):
        return False
    # a hyphen or dash must be followed by a word: only while a syllable is left, and only after
    # a content word ("sea-green", never "a-fire")
    if "-" in lm.texts[t] and (len(r.word) < 3 or r.word.lower() in D.STOPWORDS):
        return False
    return "-" not in lm.texts[t] or r.used + cur < r.budget


def _ends_line(r: _Row, cur: int, closes_ok: bool) -> bool:
    """A line break ends a line without a forced end word exactly when its budget is used."""
    return bool(closes_ok and r.end_ids is None and r.text.strip() and r.used + cur == r.budget)


def _apply(lm: LyricLM, r: _Row, t: int, text: str) -> None:
    k = lm.kinds[t]
    if r.word and not (k == CONT and r.word):
        r.prev = r.word  # the current word closes
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


def _fallback(lm: LyricLM, r: _Row, order: np.ndarray) -> tuple[int | None, str | None]:
    """The best-scored token that keeps the rules, or (None, None): the candidate has spelled
    itself into a corner (the caller drops it)."""
    for t in order:
        a = _allowed(lm, r, int(t), r.strict)
        if a:
            return int(t), a
    return None, None


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


def _pick(lm: LyricLM, r: _Row, top: np.ndarray, scores: torch.Tensor) -> tuple[int | None, str | None]:
    """The row's next token: a forced one, else the best-scored of the top drawn that fits,
    else the fallback's (None when nothing fits)."""
    if r.forced:
        return r.forced.popleft(), "tok"
    t, a = next(((int(c), a) for c in top if (a := _allowed(lm, r, int(c), r.strict))), (None, None))
    if t is None:
        t, a = _fallback(lm, r, torch.argsort(scores, descending=True).numpy())
    return t, a


@torch.no_grad()
def decode_lines(lm: LyricLM, prompts: Sequence[list[int]], rows: Sequence[_Row], gen: torch.Generator,
                 temperature: float, top_p: float, theme_bonus: torch.Tensor | None = None) -> list[_Row]:
    """Sample one line per row, each within its syllable budget, all rows as one batch. A row
    that no token can continue within the rules ends `failed`."""
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
        raw = torch.log_softmax(logits.float(), dim=-1).cpu()
        lp = torch.log_softmax(logits.float() / max(temperature, 1e-4), dim=-1).cpu() if temperature != 1 else raw
        scores = lp + _stress_bonus(lm, rows)
        if theme_bonus is not None:
            scores = scores + theme_bonus
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
            if t is None:
                r.failed = r.done = True
                nxt.append(pad)
                continue
            if a == "finish":  # the end word's first token starts a word like any other
                r.forced.extend(r.end_ids[1:])
            _apply(lm, r, t, texts[t])
            r.logprob += float(lp[i, t])
            r.raw_logprob += float(raw[i, t])
            r.n_tokens += 1
            nxt.append(t)
        att = torch.cat([att, torch.ones((len(rows), 1), dtype=torch.long)], dim=1)
        last = last + 1
        out = model(input_ids=torch.tensor(nxt, device=dev)[:, None], attention_mask=att.to(dev),
                    position_ids=last.to(dev), past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :]
    for r in rows:
        if not r.done:  # out of steps: cannot happen while the budget rules hold, but never kept
            r.failed = r.done = True
    return list(rows)


def line_score(r: _Row, weights: Sequence[float], themes: dict[str, float] | None = None) -> float:
    """How good a finished candidate is: the model's mean log-likelihood per token of the line
    (untempered: the grammar judge), plus SELECT_STRESS (twice that on dense lines) x its stress
    fit (0.3 alignment + 0.7 stressed-on-a-beat, stress as sung), plus SELECT_THEME when it
    uses a theme word or associate (`themes`: only while the stanza still lacks one)."""
    fig = stress_figures([r.text], [w >= ON_BEAT for w in weights])
    fit = 0.3 * fig["alignment_sung"] + 0.7 * fig["stressed_on_beat_sung"]
    score = r.raw_logprob / max(1, r.n_tokens) + SELECT_STRESS * (2 if r.dense else 1) * fit
    if themes and carries_theme([r.text], themes):
        score += SELECT_THEME
    return score


def _best_rows(cands: Sequence[_Row], weights: Sequence[float],
               themes: dict[str, float] | None = None) -> _Row | None:
    """The best-scored candidate that kept every rule (None if all failed)."""
    ok = [r for r in cands if not r.failed]
    return max(ok, key=lambda r: line_score(r, weights, themes)) if ok else None


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
                gen: torch.Generator, themes: dict[str, float] | None = None) -> str | None:
    """A sample among candidate end words: by the model's plan when it has one (first token of
    the word), else by the words' frequencies; theme words and associates (`themes`) get
    THEME_END_WEIGHT x their weight."""
    if not cands:
        return None
    if lp is not None:  # the plan's first token stands for the whole word only for one-token words
        single = [(w, c) for w, c in cands if len(_word_tokens(lm, w)) == 1]
        cands = single or cands
    freq = torch.log(torch.tensor([float(max(1, c)) for _, c in cands]))
    if lp is not None:
        score = lp[[_first_token(lm, w) for w, _ in cands]] + 0.1 * freq
    else:
        score = 0.5 * freq
    if themes:
        score = score + THEME_END_WEIGHT * torch.tensor([themes.get(w, 0.0) for w, _ in cands])
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
    failed_lines: int = 0  # lines written outside the word rules because every re-plan failed
    stressed_on_beat_sung: float | None = None  # the same, stress as sung (what the writer follows)


@dataclass
class _Verse:
    """One variation's lines so far, (text, end word, syllables) each, and the end words of
    each rhyme group."""

    done: list[tuple[str, str, int]] = field(default_factory=list)
    group_word: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    failed_lines: int = 0  # lines no candidate could write within the rules (kept anyway)

    def context(self, lm: LyricLM, header: list[int]) -> list[int]:
        return header + [i for text, end, n in self.done[-CONTEXT_LINES:]
                         for i in lm.encode(lm.done_line(n, end, text))]

    def end_pool(self, lm: LyricLM, idx: RhymeIndex, g: tuple[int, str] | None,
                 max_syl: int, themes: dict[str, float] | None = None) -> list[tuple[str, int]]:
        """Candidate end words, real words only: rhymes of the group's first word, else (the
        shipped model, which plans its end words) any good end word not used yet, the theme's
        words and associates that have rhymes among them; empty for a free line of a model
        without plans."""
        if g is not None and g in self.group_word:
            a = self.group_word[g]
            pool = [(w, c) for w, c in idx.candidates(max_syl, rhyme_with=a[0], avoid=a) if _known(lm, w)]
            if pool or not lm.planned:
                return pool
        elif not lm.planned:
            return []
        # an opening line, or no rhyme for the group's word: any good end word
        used = [e for _, e, _ in self.done]
        pool = [(w, c) for w, c in idx.candidates(max_syl, avoid=used) if _known(lm, w)]
        have = {w for w, _ in pool}
        for w in themes or {}:
            if w not in have and w not in used and _known(lm, w) and 1 <= n_syllables(w) <= max_syl \
                    and len(idx.classes.get(idx.rhyme_part(w) or "", [])) >= 4:
                pool.append((w, idx.freq.get(w, 8)))
        return pool

    def add(self, text: str, syllables: int, g: tuple[int, str] | None) -> None:
        ws = words(text)
        end = ws[-1].lower() if ws else ""
        self.done.append((text, end, syllables))
        if g is not None:
            self.group_word.setdefault(g, []).append(end)

    def stanza_has_theme(self, start: int, themes: dict[str, float]) -> bool:
        """Whether the lines since line `start` (the stanza's first) carry the theme."""
        return carries_theme([t for t, _, _ in self.done[start:]], themes)

    def result(self, targets: Sequence[int], strong: Sequence[Sequence[float]], idx: RhymeIndex) -> LyricResult:
        lines = [t for t, _, _ in self.done]
        fit = sum(len(line_syllables(t)) == T for t, T in zip(lines, targets)) / len(targets)
        pairs = [(a, b) for ws in self.group_word.values() for a, b in zip(ws, ws[1:])]
        rfit = sum(idx.rhymes(a, b) for a, b in pairs) / len(pairs) if pairs else None
        fig = stress_figures(lines, [float(s) >= ON_BEAT for st in strong for s in st])
        return LyricResult(lines, [e for _, e, _ in self.done], fit, rfit, fig["alignment"],
                           fig["stressed_on_beat"], self.failed_lines, fig["stressed_on_beat_sung"])


def _header(lm: LyricLM, theme: str | None) -> list[int]:
    """The stanza's opening tokens: the theme words, after BOS for a model without plans."""
    header = lm.encode(lm.prompt_header(_theme_words(theme)))
    if lm.tok.bos_token_id is not None and not lm.planned and (not header or header[0] != lm.tok.bos_token_id):
        header = [lm.tok.bos_token_id, *header]
    return header


def _candidate_rows(lm: LyricLM, verse: _Verse, header: list[int], T: int, pool: list[tuple[str, int]],
                    weights: Sequence[float], candidates: int, temperature: float,
                    gen: torch.Generator, themes: dict[str, float] | None = None,
                    ) -> tuple[list[list[int]], list[_Row]]:
    """Prompts and rows of `candidates` attempts at the verse's next line of `T` syllables,
    each with its own sampled end word (theme words preferred when `themes`)."""
    ctx = verse.context(lm, header)
    lp = _end_logprobs(lm, ctx + lm.encode(lm.plan(T, None)), temperature)
    dense = is_dense(weights)
    # a line's first word may not repeat the previous line's last one either
    before = words(verse.done[-1][0]) if verse.done else []
    prev = before[-1] if before else ""
    prompts, rows = [], []
    for _ in range(candidates):
        end = _choose_end(lm, lp, pool, gen, themes)
        if end is None:
            budget, end_ids = T, None
        else:
            budget, end_ids = T - n_syllables(end), lm.encode(" " + end) + [lm.newline_id]
        prompts.append(ctx + lm.encode(lm.plan(T, end)))
        rows.append(_Row(budget=budget, end_ids=end_ids, end_word=end or "",
                         weights=tuple(float(w) for w in weights), dense=dense, prev=prev))
    return prompts, rows


def is_dense(weights: Sequence[float]) -> bool:
    """A line of at least 3 notes per beat: at most a third of its notes on a beat."""
    on = sum(float(w) >= ON_BEAT for w in weights)
    return len(weights) >= 3 and on * 3 <= len(weights)


def write_lines(lm: LyricLM, targets: Sequence[int], strong: Sequence[Sequence[float]], *,
                theme: str | None, rhyme: str | None, variations: int, candidates: int, seed: int,
                temperature: float, top_p: float, idx: RhymeIndex,
                on_progress: Callable[[float], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> list[LyricResult]:
    """`variations` sets of lines, line i with exactly `targets[i]` syllables. `strong[i]`: per
    note of line i its metric weight (`musegen.lyrics.phrasing.metric_weights`; booleans work
    too: True a beat). `on_progress` gets the share of lines done after each line;
    `cancelled()` true stops with InterruptedError."""
    gen = torch.Generator().manual_seed(seed)
    groups = rhyme_scheme(rhyme, len(targets))
    stanza_len = len(rhyme.strip()) if rhyme else 4
    header = _header(lm, theme)
    themes = theme_set(_theme_words(theme))
    bonus = _theme_bonus(lm, themes)
    verses = [_Verse() for _ in range(variations)]
    for li, T in enumerate(targets):
        if cancelled is not None and cancelled():
            raise InterruptedError("generation cancelled")
        start = li - li % stanza_len
        need = [themes if themes and not verse.stanza_has_theme(start, themes) else None for verse in verses]
        best: list[_Row | None] = [None] * len(verses)
        for round_ in range(REPLAN_ROUNDS):
            todo = [v for v in range(len(verses)) if best[v] is None]
            if not todo:
                break
            prompts, rows, owners = [], [], []
            for v in todo:  # every variation's candidates decode as one batch
                verse = verses[v]
                pool = verse.end_pool(lm, idx, groups[li], max(1, T - 1), need[v])
                # a dense line (few notes on beats) and a re-plan try more candidates
                n = candidates * (1 + round_) * (3 if is_dense(strong[li]) else 1)
                p, r = _candidate_rows(lm, verse, header, T, pool, strong[li], n, temperature, gen, need[v])
                prompts += p
                rows += r
                owners += [v] * len(r)
            if round_ == REPLAN_ROUNDS - 1:  # the last resort: the budget alone (counted)
                for r in rows:
                    r.strict = False
            rows = decode_lines(lm, prompts, rows, gen, temperature, top_p, bonus)
            for v in todo:
                best[v] = _best_rows([r for r, o in zip(rows, owners) if o == v], strong[li], need[v])
                if round_ == REPLAN_ROUNDS - 1:
                    verses[v].failed_lines += 1
        for v, verse in enumerate(verses):
            verse.add(" ".join(best[v].text.split()), T, groups[li])  # type: ignore[union-attr]
        if on_progress is not None:
            on_progress((li + 1) / len(targets))
    return [verse.result(targets, strong, idx) for verse in verses]
