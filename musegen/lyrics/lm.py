"""The lyric language model as decoding sees it: a Hugging Face causal LM, its tokenizer, and
what each token *is* for a line with a syllable budget (a word start, a piece of a word,
punctuation, a line break, or something a lyric line never contains).

`LyricLM.load()` opens the shipped model (`musegen/models/lyrics`); any local Hugging Face
causal-LM folder works too (GPT-2, Llama, ... with their own tokenizers). The shipped model
additionally understands a *plan* before each line (syllable count, end word, see
`musegen.lyrics.data`); a model without the plan tokens gets plain text context and the same
constrained decoding.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from musegen.errors import ModelError
from musegen.lyrics import data as D
from musegen.lyrics.syllables import _analyse

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "lyrics"

# token kinds
CONT, START, PUNCT, NEWLINE, BANNED = 0, 1, 2, 3, 4
_LETTERS = re.compile(r"[A-Za-z']+")
_PUNCT = re.compile(r"[,.;:!?\-]+")  # no brackets or quotes: a lone one would dangle


@lru_cache(maxsize=200_000)
def n_syllables(word: str) -> int:
    """Syllables of one written word (the same counting the corpus was labelled with)."""
    w = word.strip("'")
    return len(_analyse(w)) if w else 0


def _token_texts(tok: object) -> list[str]:
    """Each token id as the text it stands for (leading space kept, bytes decoded)."""
    out = []
    for p in tok.convert_ids_to_tokens(list(range(len(tok)))):
        if p is None:
            out.append("")
        elif "\u2581" in p:  # sentencepiece word marker (its detokenizer would drop the space)
            out.append(p.replace("\u2581", " "))
        elif p.startswith("<0x") and p.endswith(">"):  # sentencepiece byte fallback
            out.append("\n" if p == "<0x0A>" else "\x00")
        else:  # byte-level BPE ("\u0120the" -> " the") and plain vocabularies
            out.append(tok.convert_tokens_to_string([p]))
    return out


def classify(text: str) -> tuple[int, str]:
    """(kind, letters) of one token's text."""
    if not text:
        return BANNED, ""
    if "\n" in text:
        return (NEWLINE, "") if text.strip(" \n") == "" and text.count("\n") == 1 else (BANNED, "")
    space = text.startswith(" ")
    body = text[1:] if space else text
    if body and _LETTERS.fullmatch(body) and any(c.isalpha() for c in body):
        return (START if space else CONT), body
    if body and _PUNCT.fullmatch(body):
        return PUNCT, ""
    return BANNED, ""


@dataclass
class LyricLM:
    model: object
    tok: object
    folder: Path
    device: str = "cpu"
    planned: bool = False
    kinds: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    letters: list[str] = field(default_factory=list, repr=False)
    texts: list[str] = field(default_factory=list, repr=False)  # each token id as text
    word_freq: dict[str, int] = field(default_factory=dict, repr=False)
    model_id: str = ""
    # tables derived from this model once and kept with it (the writer's stress table, lexicon,
    # word tokens and rhyme index; the kinds tensor): they belong to the model they describe
    derived: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kinds_tensor(self) -> object:
        """`kinds` as a torch tensor (cached)."""
        t = self.derived.get("kinds_t")
        if t is None:
            import torch

            t = self.derived["kinds_t"] = torch.from_numpy(self.kinds.astype(np.int64))
        return t

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu") -> LyricLM:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(path) if path is not None else SHIPPED
        if not (folder / "config.json").exists():
            hint = " (the shipped lyric model is missing from this install)" if path is None else ""
            raise ModelError(f"no Hugging Face model folder at {folder}{hint}")
        from transformers.utils import logging as hf_logging

        try:
            tok = AutoTokenizer.from_pretrained(folder)
            bar = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # the library draws nothing; callers show progress
            try:
                model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()
            finally:
                if bar:
                    hf_logging.enable_progress_bar()
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot load a causal LM from {folder}: {e}") from e
        texts = _token_texts(tok)
        kinds, letters = zip(*(classify(t) for t in texts))
        kinds = np.array(kinds, dtype=np.int8)
        for sid in tok.all_special_ids:
            kinds[sid] = BANNED
        vocab = tok.get_vocab()
        planned = D.SEP in vocab and all(D.count_token(n) in vocab for n in (1, D.MAX_SYLLABLES))
        freq = {}
        if (folder / "words.json").exists():
            freq = json.loads((folder / "words.json").read_text())
        weights = folder / "model.safetensors"
        digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:10] if weights.exists() else "?"
        return cls(model, tok, folder, device, planned, kinds, list(letters), texts, freq,
                   f"{folder.name}@{digest}")

    # -------------------------------------------------------------- text <-> ids
    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    @property
    def newline_id(self) -> int:
        ids = self.encode("\n")
        return ids[-1]

    def prompt_header(self, theme: list[str]) -> str:
        if self.planned:
            return D.format_header(theme)
        bos = self.tok.bos_token or ""
        return bos + (f"A song about {' and '.join(theme)}.\n\n" if theme else "")

    def plan(self, syllables: int, end_word: str | None) -> str:
        """The text before a line: the plan for the shipped model, nothing for others."""
        if not self.planned:
            return ""
        return f"{D.count_token(min(syllables, D.MAX_SYLLABLES))}" + (f" {end_word}{D.SEP}" if end_word else "")

    def done_line(self, syllables: int, end_word: str, text: str) -> str:
        """A finished line as context for the next one."""
        if self.planned:
            return D.format_line(min(syllables, D.MAX_SYLLABLES), end_word, text)
        return text + "\n"
