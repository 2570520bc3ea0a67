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
