"""Lyrics: syllables and stress of English text, and sung syllables on a clip's notes.

The public names are those of `musegen.lyrics.syllables` (its `__all__`)."""

from musegen.lyrics.syllables import *  # noqa: F403 - re-export the module's __all__
from musegen.lyrics.syllables import __all__  # noqa: F401
