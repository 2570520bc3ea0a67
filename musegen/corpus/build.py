"""Build the training corpus: sources → MIDI → tokens → grouped splits → shards on disk.

The stages, each resumable:

1. **Sources → MIDI** (:mod:`musegen.corpus.sources`, :mod:`musegen.corpus.abc`): ABC
   files through abc2midi, scores through music21, in a process pool. A MIDI file (or a
   ``.failed`` marker) is written atomically per piece, so a re-run converts only what is
   missing.
2. **MIDI → tokens** (:mod:`musegen.corpus.encode`): pieces in fixed chunks, each chunk
   saved as ``work/chunks/<k>-<key>.npz`` whose key hashes the tokenizer and the chunk's
   pieces; a finished chunk is never redone.
3. **Groups and splits** (:mod:`musegen.corpus.grouping`): variants share a group, and a
   group's split is a stable hash of its id.
4. **Shards** (:mod:`musegen.corpus.shards`): ``shards/{split}-{k:04d}.npz`` plus
   ``pieces.jsonl``, ``skipped.jsonl``, ``styles.json``, ``tokenizer/`` and, last,
   ``summary.json``.

Library code: it prints nothing; progress goes to ``on_progress(done, total, message)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musegen.atomic import write_json, write_jsonl, write_npz
from musegen.corpus import abc as abc_mod
from musegen.corpus.encode import EncodeItem, encode_chunk
from musegen.corpus.grouping import SPLITS, assign_groups, group_sizes, split_of
from musegen.corpus.pool import Task, run_tasks
from musegen.corpus.shards import write_shards
from musegen.corpus.sources import (
    ConversionJob,
    Piece,
    convert_m21_file,
    enumerate_midi_dir,
    enumerate_style,
    failed_marker,
)
from musegen.corpus.styles import Style, default_styles, get_style
from musegen.errors import ParameterError

ProgressFn = Callable[[int, int, str], None]

CHUNK_PIECES = 256
M21_TIMEOUT_S = 120.0
SUMMARY_FORMAT = 1


def default_corpus_dir() -> Path:
    """Where the corpus is built by default: ``$MUSEGEN_HOME/corpus`` or
    ``~/.cache/musegen/corpus``."""
    home = os.environ.get("MUSEGEN_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "musegen"
    return base / "corpus"


@dataclass
class CorpusSummary:
    """What a build produced: per style and split, pieces/bars/notes/tokens; skip reasons.

    ``stats`` maps ``(style, split)`` to a dict of the four counts. ``skipped`` maps a short
    reason to how many pieces it removed.
    """

    out_dir: Path
    styles: list[dict]
    stats: dict[tuple[str, str], dict[str, int]]
    skipped: dict[str, int]
    wall_s: float
    abc2midi: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    n_groups: int = 0
    largest_groups: list[tuple[str, int]] = field(default_factory=list)
    shards: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """One dict per style and split (splits in train/valid/test order) with
        ``style``, ``split``, ``pieces``, ``bars``, ``notes``, ``tokens``."""
        out = []
        for style in self.styles:
            for split in SPLITS:
                counts = self.stats.get((style["name"], split), _zero())
                out.append({"style": style["name"], "split": split, **counts})
        return out

    def totals(self) -> dict[str, dict[str, int]]:
        """Counts summed over styles, per split and for ``"all"``."""
        out = {s: _zero() for s in (*SPLITS, "all")}
        for (_, split), counts in self.stats.items():
            for key, value in counts.items():
                out[split][key] += value
                out["all"][key] += value
        return out

    @property
    def n_skipped(self) -> int:
        """How many pieces were skipped, for any reason."""
        return sum(self.skipped.values())

    def to_dict(self) -> dict:
        """The JSON form written to ``summary.json``."""
        return {
            "format": SUMMARY_FORMAT,
            "styles": self.styles,
            "rows": self.rows(),
            "totals": self.totals(),
            "skipped": dict(sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
            "wall_s": round(self.wall_s, 2),
            "abc2midi": self.abc2midi,
            "versions": self.versions,
            "n_groups": self.n_groups,
            "largest_groups": [list(g) for g in self.largest_groups],
            "shards": self.shards,
        }

    @classmethod
    def from_dict(cls, d: dict, out_dir: Path) -> CorpusSummary:
        """Rebuild a summary from ``summary.json``'s contents."""
        stats = {(r["style"], r["split"]): {k: r[k] for k in ("pieces", "bars", "notes",
                                                               "tokens")}
                 for r in d["rows"]}
        return cls(out_dir=Path(out_dir), styles=d["styles"], stats=stats,
                   skipped=dict(d["skipped"]), wall_s=float(d["wall_s"]),
                   abc2midi=d.get("abc2midi"), versions=d.get("versions", {}),
                   n_groups=d.get("n_groups", 0),
                   largest_groups=[tuple(g) for g in d.get("largest_groups", [])],
                   shards=d.get("shards", []))


def _zero() -> dict[str, int]:
    return {"pieces": 0, "bars": 0, "notes": 0, "tokens": 0}


class _Progress:
    def __init__(self, fn: ProgressFn | None) -> None:
        self.fn, self.done, self.total = fn, 0, 0

    def step(self, message: str, n: int = 1) -> None:
        self.done += n
        if self.fn is not None:
            self.fn(self.done, self.total, message)


def _resolve_styles(styles: Sequence[str] | None, midi_dir: Path | None) -> list[Style]:
    if styles is None:
        return [] if midi_dir is not None else default_styles()
    try:
        return [get_style(name) for name in dict.fromkeys(styles)]
    except KeyError as e:
        raise ParameterError(str(e.args[0])) from None


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("musegen", "music21", "symusic", "numpy", "mido"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # e.g. musegen run from a plain checkout
            continue
    return out


def _abc2midi_version(exe: str | None) -> str | None:
    if exe is None:
        return None
    import subprocess

    try:
        run = subprocess.run([exe, "-ver"], capture_output=True, text=True, timeout=10)
        return (run.stdout.strip().splitlines() or [exe])[0]
    except (OSError, subprocess.SubprocessError):
        return exe


def _convert_abc_job(source: str, target: str, use_abc2midi: bool) -> None:
    abc_mod.convert_abc_file(Path(source), Path(target), use_abc2midi=use_abc2midi)


def _convert_m21_job(source: str, target: str, timeout_s: float) -> str | None:
    if threading.current_thread() is not threading.main_thread():
        timeout_s = 0.0  # signals work only on the main thread; run without a timer
    return convert_m21_file(Path(source), Path(target), timeout_s)


def _job_done(job: ConversionJob) -> bool:
    if job.kind == "abc":
        return abc_mod.is_converted(job.target)
    return job.target.exists() or failed_marker(job.target).exists()


def _run_conversions(jobs: list[ConversionJob], workers: int, use_abc2midi: bool,
                     progress: _Progress) -> None:
    """Stage 1: make every missing MIDI file (heaviest jobs first, for an even pool).

    A job lost to a dying worker leaves no trace on disk, so the next build tries it again;
    in this build its pieces are skipped as having no MIDI file.
    """
    tasks = []
    for k, job in enumerate(jobs):
        if _job_done(job):
            progress.step(f"have MIDI for {job.source.name}")
        elif job.kind == "abc":
            tasks.append(Task(k, _convert_abc_job, (str(job.source), str(job.target),
                                                    use_abc2midi)))
        else:
            tasks.append(Task(k, _convert_m21_job, (str(job.source), str(job.target),
                                                    M21_TIMEOUT_S)))
    tasks.sort(key=lambda t: -jobs[t.key].cost)

    def done(key: int, result: object, error: BaseException | None) -> None:
        job = jobs[key]
        verb = "abc2midi" if job.kind == "abc" and use_abc2midi else "convert"
        progress.step(f"{verb} {job.source.parent.name}/{job.source.name}")

    run_tasks(tasks, workers, done)


def _missing_reason(piece: Piece, abc2midi: bool) -> str:
    """Why a piece has no MIDI file after stage 1."""
    if piece.family.startswith("user:"):
        return "MIDI file vanished during the build"
    if piece.source.endswith(".abc"):
        tool = "abc2midi" if abc2midi else "music21"
        return f"{tool} wrote no MIDI for the tune"
    return "music21 conversion did not finish"


def _chunk_key(tokenizer_hash: str, items: Sequence[EncodeItem]) -> str:
    h = hashlib.sha1(tokenizer_hash.encode())
    for item in items:
        path = Path(item.midi)
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        failed = failed_marker(path).exists()
        h.update(f"{item.id}\0{size}\0{failed}\n".encode())
    return h.hexdigest()[:16]


def _load_chunk(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return {"tokens": z["tokens"], "offsets": z["offsets"], **meta}


def _run_encoding(items: list[EncodeItem], workers: int, chunk_dir: Path,
                  tokenizer_dir: Path, tokenizer_hash: str,
                  progress: _Progress) -> tuple[list[dict], set[Path]]:
    """Stage 2: encode ``items`` chunk by chunk; finished chunks are loaded, not redone."""
    chunks = [items[i:i + CHUNK_PIECES] for i in range(0, len(items), CHUNK_PIECES)]
    results: list[dict | None] = [None] * len(chunks)
    paths = [chunk_dir / f"{k:05d}-{_chunk_key(tokenizer_hash, c)}.npz"
             for k, c in enumerate(chunks)]
    tasks = []
    for k, (chunk, path) in enumerate(zip(chunks, paths)):
        if path.exists():
            try:
                results[k] = _load_chunk(path)
                progress.step(f"tokens cached for pieces {k * CHUNK_PIECES}+")
                continue
            except Exception:  # noqa: BLE001 - an unreadable chunk is simply redone
                path.unlink(missing_ok=True)
        tasks.append(Task(k, encode_chunk, (chunk, str(tokenizer_dir))))

    def done(k: int, result: dict | None, error: BaseException | None) -> None:
        if error is not None:  # a crashed chunk skips its pieces in this build only
            result = {"tokens": np.zeros(0, np.uint16), "offsets": np.zeros(1, np.int64),
                      "kept": [], "skipped": [{"id": i.id, "reason": "worker failed: "
                                               + type(error).__name__} for i in chunks[k]]}
        else:
            meta = json.dumps({"kept": result["kept"], "skipped": result["skipped"]})
            write_npz(paths[k], tokens=result["tokens"], offsets=result["offsets"],
                      meta=np.array(meta))
        results[k] = result
        progress.step(f"tokenized pieces {k * CHUNK_PIECES}-"
                      f"{k * CHUNK_PIECES + len(chunks[k]) - 1}")

    run_tasks(tasks, workers, done)
    return [r for r in results if r is not None], set(paths)


def _user_styles(midi_dir: Path | None, limit: int | None,
                 taken: Iterable[str]) -> tuple[list[dict], list[Piece]]:
    if midi_dir is None:
        return [], []
    midi_dir = Path(midi_dir)
    if not midi_dir.is_dir():
        raise ParameterError(f"midi_dir {str(midi_dir)!r} is not a folder")
    try:
        found = enumerate_midi_dir(midi_dir, limit=limit)
    except ValueError as e:
        raise ParameterError(str(e)) from None
    if not found:
        raise ParameterError(f"midi_dir {str(midi_dir)!r} has no sub-folders (one per style)")
    clash = sorted(set(found) & set(taken))
    if clash:
        raise ParameterError(f"midi_dir folder(s) {clash} clash with built-in style names")
    defs, pieces = [], []
    for name, (folder, style_pieces) in found.items():
        defs.append({"name": name, "description": f"User style from {folder}",
                     "source": "user", "folder": str(midi_dir / folder)})
        pieces.extend(style_pieces)
    return defs, pieces


def build_corpus(out_dir: Path, *, midi_dir: Path | None = None, workers: int = 2,
                 on_progress: ProgressFn | None = None, limit_per_style: int | None = None,
                 styles: list[str] | None = None) -> CorpusSummary:
    """Build (or resume building) the training corpus in ``out_dir``.

    ``styles`` names registered styles (default: every default style, or none when
    ``midi_dir`` is given); ``midi_dir`` adds one user style per sub-folder of MIDI files.
    ``limit_per_style`` keeps the first N pieces of each style (for quick tests).
    ``workers`` processes convert and tokenize (``<= 1``: all in this process).
    ``on_progress(done, total, message)`` is called after every unit of work.

    Pieces that cannot be used are skipped and counted by reason, never raised. Raises
    :class:`~musegen.errors.ParameterError` for a bad argument.
    """
    started = time.perf_counter()
    if limit_per_style is not None and limit_per_style < 1:
        raise ParameterError(f"limit_per_style must be at least 1, not {limit_per_style}")
    if workers < 0:
        raise ParameterError(f"workers must be 0 or more, not {workers}")
    out_dir = Path(out_dir)
    work = out_dir / "work"
    style_defs, pieces, jobs = _enumerate(work, styles, midi_dir, limit_per_style)
    (out_dir / "summary.json").unlink(missing_ok=True)  # the corpus is unfinished from here

    exe = abc_mod.abc2midi_path()
    tokenizer_dir, tokenizer_hash = _save_tokenizer(out_dir / "tokenizer")
    items = [EncodeItem(p.id, str(p.midi), _missing_reason(p, exe is not None))
             for p in pieces if p.skip is None]
    progress = _Progress(on_progress)
    progress.total = len(jobs) + -(-len(items) // CHUNK_PIECES) + 1

    _run_conversions(jobs, workers, exe is not None, progress)
    chunks, chunk_paths = _run_encoding(items, workers, work / "chunks", tokenizer_dir,
                                        tokenizer_hash, progress)
    records, arrays, skipped_rows = _gather(pieces, chunks, style_defs, out_dir)
    shard_names = write_shards(out_dir / "shards", records, arrays)
    progress.step("wrote shards")

    stats: dict[tuple[str, str], dict[str, int]] = {}
    for rec in records:
        counts = stats.setdefault((rec["style"], rec["split"]), _zero())
        counts["pieces"] += 1
        counts["bars"] += rec["n_bars"]
        counts["notes"] += rec["n_notes"]
        counts["tokens"] += rec["n_tokens"]
    for d in style_defs:
        d["pieces"] = {s: stats.get((d["name"], s), _zero())["pieces"] for s in SPLITS}
        d["skipped"] = sum(1 for r in skipped_rows if r["style"] == d["name"])
    sizes = group_sizes({r["id"]: r["group"] for r in records})
    summary = CorpusSummary(
        out_dir=out_dir, styles=style_defs, stats=stats,
        skipped=dict(Counter(r["reason"] for r in skipped_rows)),
        wall_s=0.0, abc2midi=_abc2midi_version(exe), versions=_versions(),
        n_groups=len(sizes), largest_groups=sizes.most_common(5), shards=shard_names)
    write_jsonl(out_dir / "pieces.jsonl", records)
    write_jsonl(out_dir / "skipped.jsonl", skipped_rows)
    write_json(out_dir / "styles.json", style_defs)
    _remove_stale(work / "chunks", chunk_paths)
    summary.wall_s = time.perf_counter() - started
    write_json(out_dir / "summary.json", summary.to_dict())
    return summary


def _enumerate(work: Path, styles: Sequence[str] | None, midi_dir: Path | None,
               limit: int | None) -> tuple[list[dict], list[Piece], list[ConversionJob]]:
    """Style table (with indexes), every piece in corpus order, and the stage-1 jobs."""
    chosen = _resolve_styles(styles, midi_dir)
    style_defs = [{"name": s.name, "description": s.description, "source": "music21",
                   "family": s.family_name} for s in chosen]
    pieces: list[Piece] = []
    jobs: list[ConversionJob] = []
    for style in chosen:
        style_pieces, style_jobs = enumerate_style(style, work, limit=limit)
        pieces.extend(style_pieces)
        jobs.extend(style_jobs)
    user_defs, user_pieces = _user_styles(midi_dir, limit, (s.name for s in chosen))
    style_defs.extend(user_defs)
    pieces.extend(user_pieces)
    if not style_defs:
        raise ParameterError("no styles to build: name some styles or give a midi_dir")
    for index, d in enumerate(style_defs):
        d["index"] = index
    return style_defs, pieces, jobs


def _save_tokenizer(directory: Path) -> tuple[Path, str]:
    """Save a default tokenizer; return its folder and a hash of what was saved."""
    from musegen.tokenizer import Tokenizer

    Tokenizer().save(directory)
    data = b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())
    return directory, hashlib.sha1(data).hexdigest()


def _gather(pieces: list[Piece], chunks: list[dict], style_defs: list[dict],
            out_dir: Path) -> tuple[list[dict], dict[str, np.ndarray], list[dict]]:
    """Stage 3: records of the kept pieces in corpus order, with group and split; their
    token arrays by id; and one row per skipped piece."""
    by_id = {p.id: p for p in pieces}
    kept: list[dict] = []
    arrays: dict[str, np.ndarray] = {}
    skipped = [{"id": p.id, "style": p.style, "source": p.source, "reason": p.skip}
               for p in pieces if p.skip is not None]
    for chunk in chunks:
        offsets = chunk["offsets"]
        for j, rec in enumerate(chunk["kept"]):
            arrays[rec["id"]] = chunk["tokens"][offsets[j]:offsets[j + 1]]
            kept.append(rec)
        for rec in chunk["skipped"]:
            p = by_id[rec["id"]]
            skipped.append({"id": p.id, "style": p.style, "source": p.source,
                            "reason": rec["reason"]})
    order = {p.id: k for k, p in enumerate(pieces)}
    kept.sort(key=lambda r: order[r["id"]])
    groups = assign_groups([{"id": r["id"], "family": by_id[r["id"]].family,
                             "title": by_id[r["id"]].title,
                             "fingerprint": r.get("fingerprint")} for r in kept])
    style_index = {d["name"]: d["index"] for d in style_defs}
    records = []
    for r in kept:
        p = by_id[r["id"]]
        records.append({
            "id": p.id, "source": p.source, "style": p.style,
            "style_index": style_index[p.style], "split": split_of(groups[p.id]),
            "group": groups[p.id], "title": p.title, "midi": _rel_to(p.midi, out_dir),
            "n_bars": r["n_bars"], "n_notes": r["n_notes"], "n_tokens": r["n_tokens"],
            "fingerprint": r.get("fingerprint"),
        })
    skipped.sort(key=lambda r: order[r["id"]])
    return records, arrays, skipped


def _rel_to(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    """Delete chunk files a previous build with other settings left behind."""
    if not folder.is_dir():
        return
    for path in folder.glob("*.npz"):
        if path not in keep:
            path.unlink(missing_ok=True)
