"""Running independent tasks: serially, on a local process pool, or on any Executor.

Batch functions take ``executor=`` (anything with ``submit`` returning futures: a
``concurrent.futures`` pool or ``dask.distributed.Client.get_executor()``) or
``workers=N``. Tasks receive plain values and paths, never open datasets, and write
their outputs to temporary names before renaming, so rerunning a task is harmless.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from geolabel.errors import CancelledError, InputError, OutputError
from geolabel.stop import stop_requested

T = TypeVar("T")
R = TypeVar("R")


class SerialExecutor(Executor):
    """Runs each task at submit time in this process (``workers=1``, debugging, tests)."""

    max_workers = 1

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, like a pool would
            future.set_exception(exc)
        return future


#: More worker processes than this per core only cost memory (each holds Python and GDAL),
#: and a typo (``--workers 999999``) would start processes until the machine gives out.
MAX_WORKERS_PER_CORE = 4


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def thread_count() -> int:
    """Threads one task may use for GEOS work (:func:`geolabel.geom.threaded`): all cores,
    or ``GEOLABEL_THREADS`` where a cluster runs several tasks per machine."""
    try:
        return max(1, int(os.environ.get("GEOLABEL_THREADS", "")))
    except ValueError:
        return default_workers()


def capacity(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once (a pool's or a cluster's workers; 8 when
    it does not say)."""
    return int(getattr(executor, "max_workers", None) or getattr(executor, "_max_workers", None) or 8)


def worker_count(workers: int | None) -> int:
    """The worker processes ``workers`` asks for (None or 0: all cores), refused outside
    1 to :data:`MAX_WORKERS_PER_CORE` per core. The batch functions call it before any
    work, so a typo is said at once.

    >>> worker_count(1)
    1
    """
    n = default_workers() if workers is None or workers == 0 else workers
    most = MAX_WORKERS_PER_CORE * default_workers()
    if not 1 <= n <= most:
        raise InputError(
            f"`workers` must be from 1 to {most} ({MAX_WORKERS_PER_CORE} per core; 0: all cores); got {workers}",
            params=("workers",),
        )
    return n


@contextmanager
def local_executor(workers: int | None) -> Iterator[Executor]:
    """A serial executor for 1 worker, else a process pool of ``workers`` processes.

    The pool's workers end with this process, even when it is killed (``kill -9``), and
    leave signals to it: an interrupted or failing run stops them at once instead of
    letting them work through the queue.
    """
    n = worker_count(workers)
    if n == 1:
        yield SerialExecutor()
        return
    with _process_pool(n) as pool:
        yield pool


@contextmanager
def side_executor(*, process: bool) -> Iterator[Executor]:
    """One worker beside the caller's own work: a process forked from this one when
    ``process`` (and the platform can fork), else a thread. A process does not share the
    caller's GIL, so two Python-heavy jobs run at full speed; never ask for one inside
    QGIS. Tasks for a process find large inputs through :mod:`geolabel.shared`."""
    if not (process and "fork" in multiprocessing.get_all_start_methods()):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="geolabel-side") as threads:
            yield threads
        return
    with _process_pool(1) as pool:
        yield pool


@contextmanager
def _process_pool(n: int) -> Iterator[ProcessPoolExecutor]:
    """``n`` worker processes (forked where the platform can), ended with this process
    and stopped at once when the caller fails."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(parent: int) -> None:
    """Worker set-up: Ctrl-C is the parent's to handle, SIGTERM ends a worker, and a worker
    ends when its parent does (Linux), instead of waiting forever on a queue nobody fills."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate a pool's workers (their chips in flight are lost; temporaries are swept later)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        with contextlib.suppress(Exception):
            process.terminate()


def run_tasks(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    executor: Executor,
    on_result: Callable[[T, R], None],
    is_cancelled: Callable[[], bool] | None = None,
    max_in_flight: int = 8,
    on_started: Callable[[], None] | None = None,
    on_error: Callable[[T, Exception], None] | None = None,
) -> None:
    """Submit ``fn(task)`` for every task with a bounded queue; call ``on_result`` as they finish.

    At most ``max_in_flight`` tasks are queued at once, so memory stays flat however
    many tasks there are. The first task error is re-raised after the running tasks end;
    an error carrying ``partial_results`` reports them through ``on_result`` first. With
    ``on_error`` (``--keep-going``), a task's error goes to it instead and the batch goes on;
    errors that are no task's fault (:class:`~geolabel.errors.OutputError`: a full disk)
    still stop it.
    ``on_started`` is called once, when the first tasks are queued: bookkeeping done
    there overlaps with the work instead of delaying it.
    """
    pending: dict[Future[R], T] = {}
    try:
        _run(
            fn,
            iter(tasks),
            pending,
            executor=executor,
            on_result=on_result,
            is_cancelled=is_cancelled,
            limit=max_in_flight,
            on_started=on_started,
            on_error=on_error,
        )
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) or failed: queued tasks must not start
        for future in pending:
            future.cancel()
        raise


def run_batch(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    on_result: Callable[[T, R], None],
    executor: Executor | None = None,
    workers: int | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    on_started: Callable[[], None] | None = None,
    queued_per_worker: int = 2,
    on_error: Callable[[T, Exception], None] | None = None,
) -> None:
    """:func:`run_tasks` on the caller's ``executor`` (a Dask client's, a thread pool),
    else on local worker processes (:func:`local_executor`), with ``queued_per_worker``
    tasks queued per worker: every batch command runs its tasks through here."""
    chosen = contextlib.nullcontext(executor) if executor is not None else local_executor(workers)
    with chosen as pool:
        run_tasks(
            fn,
            tasks,
            executor=pool,
            on_result=on_result,
            is_cancelled=is_cancelled,
            on_started=on_started,
            max_in_flight=max(2, queued_per_worker * capacity(pool)),
            on_error=on_error,
        )


def _run(
    fn: Callable[[T], R],
    it: Iterator[T],
    pending: dict[Future[R], T],
    *,
    executor: Executor,
    on_result: Callable[[T, R], None],
    is_cancelled: Callable[[], bool] | None,
    limit: int,
    on_started: Callable[[], None] | None,
    on_error: Callable[[T, Exception], None] | None = None,
) -> None:
    exhausted = False
    error: BaseException | None = None
    while True:
        if stop_requested() is not None:  # a Ctrl-C its handler's raise did not deliver
            raise KeyboardInterrupt
        while not exhausted and error is None and len(pending) < limit:
            if is_cancelled is not None and is_cancelled():
                error = CancelledError("cancelled")
                break
            try:
                task = next(it)
            except StopIteration:
                exhausted = True
                break
            pending[executor.submit(fn, task)] = task
        if on_started is not None and pending:
            on_started()
            on_started = None
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
                if on_error is not None and isinstance(exc, Exception) and not isinstance(exc, OutputError):
                    on_error(task, exc)
                else:
                    error = error or exc
                continue
            on_result(task, future.result())  # finished work counts even after another task failed
    if error is not None:
        raise error
