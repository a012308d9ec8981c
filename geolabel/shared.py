"""Large read-only inputs handed to local workers through shared memory, not pickled per task.

A batch that deals many tasks out of one big table (an export's labels, a check's
geometries) would otherwise serialise the rows of every task in the dealing process and
parse them again in the worker; on a small machine that costs the dealer a core. Instead
the batch *publishes* the table under a key before its local pool starts: the pool's
processes are forked afterwards and find the table in their copy of this process's memory,
and threads (a serial executor, a thread pool inside QGIS) find it in the same memory.
Tasks carry the key. :func:`shares_memory` says whether an executor can do this; tasks
for any other executor (a Dask cluster, spawned processes) carry their rows inline.

>>> with published({"rows": [1, 2]}) as key:
...     lookup(key)["rows"]
[1, 2]
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

_TABLES: dict[str, Any] = {}
_KEYS = itertools.count()


@contextmanager
def published(value: Any) -> Iterator[str]:
    """``value`` findable by the returned key (:func:`lookup`) until the block ends.

    A local process pool must start inside the block: its workers inherit the table when
    they are forked."""
    key = f"table-{next(_KEYS)}"
    _TABLES[key] = value
    try:
        yield key
    finally:
        del _TABLES[key]


@contextmanager
def published_for(executor: Executor | None, value: Any) -> Iterator[str | None]:
    """:func:`published` when ``executor``'s tasks can find it (:func:`shares_memory`),
    else None: the tasks must then carry their values."""
    if not shares_memory(executor):
        yield None
        return
    with published(value) as key:
        yield key


def lookup(key: str) -> Any:
    """The value published under ``key``, in this process or the one it was forked from."""
    try:
        return _TABLES[key]
    except KeyError:
        raise RuntimeError(
            f"shared table {key!r} is not in this process: the task ran on a worker that was "
            "not forked from the publishing process (pass the rows inline for this executor)"
        ) from None


def shares_memory(executor: Executor | None) -> bool:
    """Whether tasks run by ``executor`` see tables published here: threads of this process,
    or (None) the local pool of :func:`geolabel.parallel.local_executor`, which forks
    where the platform can fork and is serial for one worker."""
    from geolabel.parallel import SerialExecutor

    if executor is None:
        return "fork" in multiprocessing.get_all_start_methods()
    return isinstance(executor, SerialExecutor | ThreadPoolExecutor)
