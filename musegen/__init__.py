"""musegen: a local co-writer for musicians (style-conditioned transformer over MIDI)."""

from musegen.clip import PPQ, Clip, Note, TempoChange, TimeSignature, Track
from musegen.errors import MidiFileError, MusegenError, ParameterError, TokenizeError

__version__ = "0.1.0"

__all__ = [
    "PPQ",
    "Clip",
    "Note",
    "Track",
    "TempoChange",
    "TimeSignature",
    "MusegenError",
    "MidiFileError",
    "ParameterError",
    "TokenizeError",
    "__version__",
]


def __getattr__(name: str) -> object:
    """`musegen.Studio` and `musegen.Take`, imported on first use (they pull in torch)."""
    if name in ("Studio", "Take"):
        from musegen import studio

        return getattr(studio, name)
    raise AttributeError(f"module 'musegen' has no attribute {name!r}")
