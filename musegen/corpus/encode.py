"""MIDI file → Clip → token ids, with the numbers the corpus records about each piece.

:func:`encode_chunk` is the process-pool task of stage 2: it encodes a list of pieces and
returns their tokens concatenated, one record per kept piece and one per skipped piece with
a short reason. It never raises for a bad piece.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musegen.corpus.grouping import melodic_fingerprint
from musegen.corpus.sources import failed_marker

MIN_BARS = 2
REASON_CHARS = 60

_tokenizers: dict[str, object] = {}


@dataclass(frozen=True)
class EncodeItem:
    """One piece to encode: its id, MIDI path, and the reason to give if the file is absent."""

    id: str
    midi: str
    missing_reason: str


def _tokenizer(directory: str) -> object:
    """The tokenizer saved in ``directory``, loaded once per worker process."""
    tok = _tokenizers.get(directory)
    if tok is None:
        from musegen.tokenizer import Tokenizer

        tok = _tokenizers[directory] = Tokenizer.load(directory)
    return tok


def short_reason(prefix: str, message: str) -> str:
    """``prefix: message`` with numbers replaced by N, so reasons count up into classes."""
    text = re.sub(r"\d+(?:\.\d+)?", "N", str(message)).strip().rstrip(".")
    text = text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
    return f"{prefix}: {text}" if text else prefix


def top_line_fingerprint(clip: object) -> str | None:
    """The melodic fingerprint of the clip's highest-sounding pitched track."""
    best, best_mean = None, -1.0
    for track in clip.tracks:
        if track.is_drum or len(track.notes) < 2:
            continue
        mean = sum(n.pitch for n in track.notes) / len(track.notes)
        if mean > best_mean:
            best, best_mean = track, mean
    if best is None:
        return None
    from musegen.clip import PPQ

    return melodic_fingerprint(((n.start_tick, n.pitch) for n in best.notes), PPQ)


def encode_piece(tok: object, midi: Path) -> tuple[np.ndarray, dict] | str:
    """Tokens and stats of one MIDI file, or the short reason it is skipped."""
    from musegen.clip import Clip
    from musegen.errors import MidiFileError, TokenizeError

    try:
        clip = Clip.load(midi)
    except MidiFileError as e:
        if "no notes" in e.reason:
            return "no notes"
        return short_reason("unreadable MIDI", e.reason.split(":")[0])
    try:
        ids = np.asarray(tok.encode(clip))
    except TokenizeError as e:
        if "no notes" in str(e):
            return "no notes"
        return short_reason("cannot tokenize", str(e))
    if ids.dtype != np.uint16:
        if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.uint16).max):
            return "cannot tokenize: token id out of uint16 range"
        ids = ids.astype(np.uint16)
    n_notes = int(tok.count_notes(ids))
    n_bars = int(np.count_nonzero(ids == tok.vocab.bar))
    if n_notes == 0:
        return "no notes"
    if n_bars < MIN_BARS:
        return f"too short (<{MIN_BARS} bars)"
    return ids, {"n_bars": n_bars, "n_notes": n_notes, "n_tokens": int(ids.size),
                 "fingerprint": top_line_fingerprint(clip)}


def encode_chunk(items: list[EncodeItem], tokenizer_dir: str) -> dict:
    """Encode ``items``; returns ``tokens`` (uint16), ``offsets`` (int64, n+1), ``kept``
    (one stats dict with ``id`` per piece, in ``tokens`` order) and ``skipped``
    (``{"id", "reason"}`` dicts)."""
    tok = _tokenizer(tokenizer_dir)
    arrays: list[np.ndarray] = []
    kept: list[dict] = []
    skipped: list[dict] = []
    for item in items:
        midi = Path(item.midi)
        marker = failed_marker(midi)
        if marker.exists():
            reason = marker.read_text(encoding="utf-8").strip() or item.missing_reason
            skipped.append({"id": item.id, "reason": reason})
            continue
        if not midi.is_file():
            skipped.append({"id": item.id, "reason": item.missing_reason})
            continue
        try:
            result = encode_piece(tok, midi)
        except Exception as e:  # noqa: BLE001 - never let one piece stop the build
            result = short_reason("unexpected error", type(e).__name__)
        if isinstance(result, str):
            skipped.append({"id": item.id, "reason": result})
            continue
        ids, stats = result
        arrays.append(ids)
        kept.append({"id": item.id, **stats})
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    if arrays:
        offsets[1:] = np.cumsum([a.size for a in arrays])
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint16)
    return {"tokens": tokens.astype(np.uint16, copy=False), "offsets": offsets,
            "kept": kept, "skipped": skipped}
