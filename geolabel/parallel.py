"""Running independent tasks: serially, on a local process pool, or on any Executor.

Batch functions take ``executor=`` (anything with ``submit`` returning futures: a
``concurrent.futures`` pool or ``dask.distributed.Client.get_executor()``) or
``workers=N``. Tasks receive plain values and paths, never open datasets, and write
their outputs to temporary names before renaming, so rerunning a task is harmless.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from geolabel.errors import CancelledError, InputError

T = TypeVar("T")
R = TypeVar("R")


class SerialExecutor(Executor):
    """Runs each task at submit time in this process (``workers=1``, debugging, tests)."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, like a pool would
            future.set_exception(exc)
        return future


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextmanager
def local_executor(workers: int | None) -> Iterator[Executor]:
    """A serial executor for 1 worker, else a process pool of ``workers`` processes."""
    n = default_workers() if workers is None or workers == 0 else workers
    if n < 1:
        raise InputError(f"`workers` must be 1 or more (0: all cores); got {workers}", params=("workers",))
    if n == 1:
        yield SerialExecutor()
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        yield pool


def run_tasks(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    executor: Executor,
    on_result: Callable[[T, R], None],
    is_cancelled: Callable[[], bool] | None = None,
    max_in_flight: int = 8,
) -> None:
    """Submit ``fn(task)`` for every task with a bounded queue; call ``on_result`` as they finish.

    At most ``max_in_flight`` tasks are queued at once, so memory stays flat however
    many tasks there are. The first task error is re-raised after the running tasks end;
    an error carrying ``partial_results`` reports them through ``on_result`` first.
    """
    pending: dict[Future[R], T] = {}
    it = iter(tasks)
    exhausted = False
    error: BaseException | None = None
    while True:
        while not exhausted and error is None and len(pending) < max_in_flight:
            if is_cancelled is not None and is_cancelled():
                error = CancelledError("cancelled")
                break
            try:
                task = next(it)
            except StopIteration:
                exhausted = True
                break
            pending[executor.submit(fn, task)] = task
        if not pending:
            break
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            task = pending.pop(future)
            exc = future.exception()
            if exc is not None:
                partial = getattr(exc, "partial_results", None)
                if partial is not None:  # what the task finished before failing still counts
                    on_result(task, partial)
                error = error or exc
                continue
            on_result(task, future.result())  # finished work counts even after another task failed
    if error is not None:
        raise error
