"""Lyrics: syllables and stress of English text, and sung syllables on a clip's notes."""

from musegen.lyrics.syllables import (
    Syllable,
    attach_lyrics,
    line_syllables,
    stress_pattern,
    syllables,
    to_lyric_events,
    words,
)

__all__ = [
    "Syllable",
    "attach_lyrics",
    "line_syllables",
    "stress_pattern",
    "syllables",
    "to_lyric_events",
    "words",
]
