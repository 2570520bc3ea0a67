"""musegen: a local co-writer for musicians (style-conditioned transformer over MIDI)."""

from musegen.clip import PPQ, Clip, Note, TempoChange, TimeSignature, Track
from musegen.errors import MidiFileError, MusegenError, ParameterError, TokenizeError
from musegen.version import __version__

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
    """`musegen.Studio` (it pulls in torch), `musegen.Take` and `musegen.TakeNotes`, imported
    on first use."""
    if name == "Studio":
        from musegen.studio import Studio

        return Studio
    if name == "TakeNotes":
        from musegen.generate.run import TakeNotes

        return TakeNotes
    if name == "Take":
        from musegen.take import Take

        return Take
    raise AttributeError(f"module 'musegen' has no attribute {name!r}")
