"""The exceptions musegen raises at its boundaries.

Every error a user can cause names the bad value (a file, a parameter) and the reason,
so a musician never sees a stack trace from deep inside a parser.
"""

from __future__ import annotations


class MusegenError(Exception):
    """Base class of every error musegen raises on purpose."""


class MidiFileError(MusegenError, ValueError):
    """A MIDI file could not be read or written: corrupt, truncated, empty, absurd."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class TokenizeError(MusegenError, ValueError):
    """A clip cannot be expressed in the token language (or tokens in a clip)."""


class ParameterError(MusegenError, ValueError):
    """A user-supplied parameter is out of range; the message names it and its value."""


class ModelError(MusegenError):
    """A model folder is missing, incomplete or not a model musegen can load."""
