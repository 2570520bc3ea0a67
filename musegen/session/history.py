"""Replaying the journal into the session's state: takes, their status, and what undo undoes.

Pure functions over journal entries (dicts), so the rules are testable without files:

- a `take` or `edit` entry adds a take (an edit is a take whose parent is the edited one);
- `accept` / `reject` set a take's status; the latest decision that is not undone wins;
- `undo` names the `seq` of the accept, reject or edit it reverses. An undone edit hides its take
  (its files stay on disk and in the journal: nothing is ever deleted);
- a decision naming a take not seen yet is kept and counts once the take appears (its `take`
  line was damaged and the take was adopted again from its files);
- `resolve` names a damaged journal line (its number and digest) the musician has dealt with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

UNDOABLE = ("accept", "reject", "edit")
PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"


@dataclass(frozen=True)
class TakeRecord:
    """One take of a session, as the journal and its sidecar describe it."""

    id: str
    operation: str
    parent: str | None
    midi_path: Path
    request_id: str | None = None
    created_s: float = 0.0
    n_bars: int = 0
    n_notes: int = 0
    seed: int | None = None
    model_id: str | None = None
    params: dict = field(default_factory=dict, compare=False)
    source: str | None = None  # the file an import or an edit came from
    status: str = PENDING
    undone: bool = False  # an edit that was undone: hidden, but kept
    recovered: bool = False  # adopted from complete files that a crash left unjournaled
    damage: str | None = None  # what is wrong with its files, found when the session opened

    @property
    def sidecar_path(self) -> Path:
        return self.midi_path.with_suffix(".json")


@dataclass
class History:
    takes: dict[str, TakeRecord] = field(default_factory=dict)  # in creation order
    requests: dict[str, dict] = field(default_factory=dict)  # request id -> its entry
    decisions: dict[str, list[dict]] = field(default_factory=dict)  # take id -> entries
    undone: set[int] = field(default_factory=set)  # seqs reversed by an undo
    by_seq: dict[int, dict] = field(default_factory=dict)
    resolved: set[tuple[int, str]] = field(default_factory=set)  # (line, digest) of damaged lines
    last_seq: int = 0

    def undo_target(self) -> dict | None:
        """The latest accept, reject or edit that is not undone yet."""
        for seq in sorted(self.by_seq, reverse=True):
            e = self.by_seq[seq]
            if e["type"] in UNDOABLE and seq not in self.undone:
                return e
        return None


def record_from_entry(entry: dict, takes_dir: Path) -> TakeRecord:
    """The TakeRecord a `take` or `edit` journal entry describes."""
    tid = str(entry["take"])
    return TakeRecord(
        id=tid, operation=str(entry.get("operation", entry["type"])), parent=entry.get("parent"),
        midi_path=takes_dir / f"{tid}.mid", request_id=entry.get("request"),
        created_s=float(entry.get("time", 0.0)), n_bars=int(entry.get("n_bars", 0)),
        n_notes=int(entry.get("n_notes", 0)), seed=entry.get("seed"),
        model_id=entry.get("model_id"), params=dict(entry.get("params") or {}),
        source=entry.get("source"), recovered=bool(entry.get("recovered", False)))


def apply(h: History, entry: dict, takes_dir: Path) -> None:
    """Fold one journal entry into the history (entries must come in `seq` order)."""
    seq = int(entry["seq"])
    h.by_seq[seq] = entry
    h.last_seq = max(h.last_seq, seq)
    fold = _FOLDS.get(entry["type"])
    if fold is not None:
        fold(h, entry, takes_dir)


def _fold_take(h: History, entry: dict, takes_dir: Path) -> None:
    """A `take` or `edit` entry: a new take, with any decisions that arrived before it."""
    if "take" not in entry:
        return
    rec = record_from_entry(entry, takes_dir)
    h.takes[rec.id] = rec
    if rec.id in h.decisions:
        _restatus(h, rec.id)


def _fold_request(h: History, entry: dict, takes_dir: Path) -> None:
    if "request" in entry:
        h.requests[str(entry["request"])] = entry


def _fold_decision(h: History, entry: dict, takes_dir: Path) -> None:
    """An `accept` or `reject`: kept even for a take not seen yet."""
    tid = entry.get("take")
    if not isinstance(tid, str):
        return
    h.decisions.setdefault(tid, []).append(entry)
    if tid in h.takes:
        _restatus(h, tid)


def _fold_resolve(h: History, entry: dict, takes_dir: Path) -> None:
    if isinstance(entry.get("line"), int):
        h.resolved.add((entry["line"], str(entry.get("digest"))))


def _fold_undo(h: History, entry: dict, takes_dir: Path) -> None:
    """An `undo`: hides an edit's take, or re-decides the status of an accept's or reject's."""
    undoes = entry.get("undoes")
    if not isinstance(undoes, int):
        return
    target = h.by_seq.get(undoes)
    if target is None or target["type"] not in UNDOABLE:
        return
    h.undone.add(undoes)
    tid = target.get("take")
    if tid not in h.takes:
        return
    if target["type"] == "edit":
        h.takes[tid] = replace(h.takes[tid], undone=True)
    else:
        _restatus(h, tid)


_FOLDS: dict[str, Callable[[History, dict, Path], None]] = {
    "take": _fold_take, "edit": _fold_take, "request": _fold_request,
    "accept": _fold_decision, "reject": _fold_decision,
    "resolve": _fold_resolve, "undo": _fold_undo,
}


def _restatus(h: History, take_id: str) -> None:
    live = [e for e in h.decisions.get(take_id, []) if e["seq"] not in h.undone]
    status = PENDING if not live else (ACCEPTED if live[-1]["type"] == "accept" else REJECTED)
    h.takes[take_id] = replace(h.takes[take_id], status=status)


def replay(entries: list[dict], takes_dir: Path) -> History:
    """The state the journal describes."""
    h = History()
    for e in sorted(entries, key=lambda e: e["seq"]):
        apply(h, e, takes_dir)
    return h
