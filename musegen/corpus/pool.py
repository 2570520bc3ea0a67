"""Run build tasks in worker processes, surviving a worker that dies.

A music21 parse can, rarely, take a worker down (memory, a C extension); the standard
``ProcessPoolExecutor`` then fails every pending task with ``BrokenProcessPool``. Here the
pool is restarted and the unfinished tasks resubmitted, as long as each round finishes
something (at most ``MAX_RESTARTS`` times); what still fails is reported to the caller as
an exception result, never raised.

Workers are started with ``spawn`` (they inherit no threads or locks from the caller, such
as a progress bar's refresh thread), so a script calling the build must guard its entry
point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

MAX_RESTARTS = 10


class WorkerStartError(RuntimeError):
    """The worker processes die before finishing any task: the environment is broken."""


@dataclass(frozen=True)
class Task:
    """``fn(*args)`` to run in a worker; ``key`` identifies it to the caller."""

    key: Hashable
    fn: Callable
    args: tuple


def make_executor(workers: int) -> cf.ProcessPoolExecutor:
    """A process pool of ``workers`` started with ``spawn``."""
    return cf.ProcessPoolExecutor(max_workers=workers,
                                  mp_context=multiprocessing.get_context("spawn"))


def run_tasks(tasks: Sequence[Task], workers: int,
              on_result: Callable[[Hashable, object, BaseException | None], None]) -> None:
    """Run ``tasks`` in ``workers`` processes (``<= 1``: here, in order) and call
    ``on_result(key, result, error)`` in this process as each finishes. ``error`` is the
    exception a task raised, or a ``BrokenProcessPool`` when its worker kept dying.
    Raises :class:`WorkerStartError` only when workers die before any task has finished.
    """
    if workers <= 1:  # in this process, one after the other
        _run_here(tasks, on_result)
        return
    pending = list(tasks)
    finished_any = False
    restarts = 0
    while pending:
        broken, finished = _run_round(pending, workers, on_result)
        finished_any = finished_any or finished
        if broken and not finished_any:
            raise WorkerStartError(
                "worker processes died before finishing any task; if you call the build "
                "from a script, put the call under `if __name__ == \"__main__\":`")
        if broken and restarts < MAX_RESTARTS and len(broken) < len(pending):
            restarts += 1  # the last round got somewhere: try the rest in a fresh pool
            pending = broken
            continue
        for task in broken:
            on_result(task.key, None, BrokenProcessPool("a worker process died"))
        pending = []


def _run_here(tasks: Sequence[Task], on_result: Callable[[Hashable, object, BaseException | None], None]
              ) -> None:
    """Each task in this process, one after the other, its result or exception to ``on_result``."""
    for task in tasks:
        try:
            result = task.fn(*task.args)
        except Exception as e:  # noqa: BLE001 - the caller decides what it means
            on_result(task.key, None, e)
        else:
            on_result(task.key, result, None)


def _run_round(pending: list[Task], workers: int,
               on_result: Callable[[Hashable, object, BaseException | None], None]
               ) -> tuple[list[Task], bool]:
    """``pending`` in one fresh pool: each finished task's result or exception to ``on_result``.
    Returns the tasks lost to a dying worker, and whether any task finished."""
    broken: list[Task] = []
    finished = False
    executor = make_executor(workers)
    futures: dict[cf.Future, Task] = {}
    try:
        for i, task in enumerate(pending):
            try:
                futures[executor.submit(task.fn, *task.args)] = task
            except BrokenProcessPool:
                broken.extend(pending[i:])
                break
        for future in cf.as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool:
                broken.append(task)
                continue
            except Exception as e:  # noqa: BLE001 - the caller decides what it means
                finished = True
                on_result(task.key, None, e)
                continue
            finished = True
            on_result(task.key, result, None)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return broken, finished
