"""A theme carried by a stanza: the theme's words and the words the verse corpus associates
with them.

The association table (`musegen/data/lyric_associations.json`) is measured on the lyric model's
training split: stanzas are documents, the 6,000 content words most stanzas use are the
vocabulary, and word b is an associate of word a when they share stanzas far more often than
chance: positive pointwise mutual information with context-distribution smoothing (Levy,
Goldberg & Dagan 2015: P(b) raised to 0.75), at least 8 shared stanzas. Words that merely rhyme
with it (rhymed verse pairs home/foam) and non-words (`musegen.lyrics.lexicon`) are left out;
each word keeps its 24 strongest associates. `build_associations` remakes the table from a `lyrics-corpus` folder:

    python -m musegen.lyrics.theme ~/.cache/musegen/lyrics/corpus
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

from musegen.lyrics import data as D

TABLE = Path(__file__).resolve().parent.parent / "data" / "lyric_associations.json"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LINE = re.compile(re.escape(D.SEP) + r"(.*)")


def content_words(text: str) -> set[str]:
    """The content words of a text, lower case (no stop words, at least 3 letters)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in D.STOPWORDS}


def variants(word: str) -> set[str]:
    """A word and its plain plural / singular (sea, seas; river, rivers)."""
    w = word.lower()
    out = {w, w + "s"}
    if w.endswith("s") and len(w) > 3:
        out.add(w[:-1])
    return out


def build_associations(corpus: Path, *, max_tokens: int = 8_000_000, vocab: int = 6000, keep: int = 24,
                       min_shared: int = 8) -> dict:
    """The association table from the first `max_tokens` tokens of `corpus`'s training split."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(corpus / "tokenizer" / "tokenizer.json"))
    stream = np.load(corpus / "train.npy", mmap_mode="r")[:max_tokens]
    bos = tok.token_to_id(D.BOS)
    cuts = np.flatnonzero(np.asarray(stream) == bos)
    pieces = [np.asarray(stream[a:b]).tolist() for a, b in zip(cuts, [*cuts[1:], len(stream)])]
    docs = []
    for text in tok.decode_batch(pieces, skip_special_tokens=False):
        docs.append(content_words(" ".join(m.group(1) for m in _LINE.finditer(text))))
    import pronouncing

    from musegen.lyrics.lexicon import is_real_word

    df = Counter(w for d in docs for w in d)
    words = [w for w, _ in df.most_common(3 * vocab) if is_real_word(w)][:vocab]

    def rhyme(w: str) -> str | None:
        ph = pronouncing.phones_for_word(w)
        return pronouncing.rhyming_part(ph[0]) if ph else None

    rhymes = [rhyme(w) for w in words]
    index = {w: i for i, w in enumerate(words)}
    co = np.zeros((len(words), len(words)), dtype=np.int32)
    for d in docs:
        ids = np.array(sorted(index[w] for w in d if w in index), dtype=np.int64)
        if len(ids) > 1:
            co[np.ix_(ids, ids)] += 1
    n = float(len(docs))
    count = np.array([df[w] for w in words], dtype=np.float64)
    p_ctx = count ** 0.75 / (count ** 0.75).sum()
    table = {}
    for i, w in enumerate(words):
        shared = co[i].astype(np.float64)
        shared[i] = 0
        ok = shared >= min_shared
        if rhymes[i] is not None:
            ok &= np.array([r != rhymes[i] for r in rhymes])
        if not ok.any():
            continue
        pmi = np.where(ok, np.log(np.maximum(shared, 1) / count[i] / np.maximum(p_ctx, 1e-12)), -np.inf)
        top = [j for j in np.argsort(-pmi)[:keep] if pmi[j] > 0]
        if top:
            table[w] = [[words[j], round(float(pmi[j]), 2)] for j in top]
    return {"measure": "PPMI over stanzas, context smoothing 0.75", "stanzas": len(docs),
            "max_tokens": int(max_tokens), "vocab": len(words), "min_shared": min_shared,
            "log_n": round(math.log(n), 4), "associates": table}


@lru_cache(maxsize=1)
def association_table() -> dict[str, list[tuple[str, float]]]:
    """{word: [(associate, PPMI), ...]} from the shipped table (empty if it is missing)."""
    if not TABLE.exists():
        return {}
    raw = json.loads(TABLE.read_text())["associates"]
    return {w: [(a, float(s)) for a, s in v] for w, v in raw.items()}


def theme_set(theme_words: list[str], k: int = 30) -> dict[str, float]:
    """{word: weight} a stanza on these theme words may use to carry the theme: each theme word
    and its variants (weight 1), and up to `k` associates of each (weight by PPMI rank, <= 1)."""
    table = association_table()
    out: dict[str, float] = {}
    for t in theme_words:
        for v in variants(t):
            out[v] = 1.0
        assoc = next((table[v] for v in sorted(variants(t)) if v in table), [])
        for r, (a, _) in enumerate(assoc[:k]):
            for v in variants(a):
                out.setdefault(v, round(0.8 - 0.5 * r / max(1, k), 3))
    return out


def carries_theme(lines: list[str], themes: dict[str, float]) -> bool:
    """Whether a stanza's lines use a theme word or an associate."""
    return bool(themes) and any(w in themes for ln in lines for w in _WORD.findall(ln.lower()))


if __name__ == "__main__":
    from musegen.atomic import write_text

    table = build_associations(Path(sys.argv[1]).expanduser())
    write_text(TABLE, json.dumps(table, separators=(",", ":")) + "\n")
    print(f"{len(table['associates'])} words from {table['stanzas']} stanzas -> {TABLE}")
