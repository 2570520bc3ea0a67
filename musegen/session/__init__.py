"""Session and take history: every take on disk (MIDI + JSON sidecar, written atomically) and an
append-only, fsynced journal of requests and decisions that survives kill -9.

    >>> from musegen.session import Session
    >>> with Session.open("my-song") as s:
    ...     first = s.import_clip("riff.mid")
    ...     [take, *_] = s.add_takes(studio.continue_(s.clip(first.id)), parent=first.id)
    ...     s.accept(take.id)
"""

from musegen.session.history import ACCEPTED, PENDING, REJECTED, TakeRecord
from musegen.session.recover import RecoveryReport
from musegen.session.session import Problem, Session, SessionError

__all__ = ["Session", "SessionError", "Problem", "TakeRecord", "RecoveryReport", "ACCEPTED", "PENDING",
           "REJECTED"]
