"""Batch work on an existing Dask distributed cluster: the executor behind ``--scheduler``.

The batch commands already run their tasks through an executor (:mod:`geolabel.parallel`);
a cluster is one more executor, ``Client.get_executor()``, so a run on a cluster takes the
same code path as a local one and writes the same bytes. Tasks take paths and windows,
write under temporary names and rename, so a task Dask re-runs after a worker died does
no harm.

Dask is an optional extra (``pip install 'geolabel[dask]'``) imported only here, when a
scheduler is asked for: the plain CLI starts as fast as before.

>>> scheduler_address(None, environ={"GEOLABEL_SCHEDULER": "tcp://10.0.0.5:8786"})
'tcp://10.0.0.5:8786'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from geolabel.errors import InputError, UnreachableError, first_line

#: The environment variable naming the scheduler when ``--scheduler`` is not given.
SCHEDULER_ENV = "GEOLABEL_SCHEDULER"
#: Seconds to wait for the scheduler to answer before saying it does not.
CONNECT_SECONDS = 15
#: GDAL settings on the workers (as :func:`geolabel.raster.gdal_env` sets them locally): a
#: small block cache and one GDAL thread per task, so N worker threads never become N x the
#: cores or N x the memory of one task.
WORKER_ENV = {"GDAL_CACHEMAX": "64", "GDAL_NUM_THREADS": "1", "GEOLABEL_THREADS": "1"}


def scheduler_address(value: str | None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The scheduler to use: ``value`` (``--scheduler``), else ``GEOLABEL_SCHEDULER``, else None."""
    env = os.environ if environ is None else environ
    return value or env.get(SCHEDULER_ENV) or None


class ClusterExecutor(Executor):
    """``Client.get_executor()`` with what :mod:`geolabel.parallel` needs to size its queue:
    ``max_workers``, the cluster's worker threads when it started."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._executor = client.get_executor(pure=False)  # a task re-submitted must run again
        self.max_workers = max(1, sum(client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._executor.submit(fn, *args, **kwargs)  # type: ignore[no-any-return]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait)


@contextlib.contextmanager
def cluster_executor(scheduler: str) -> Iterator[ClusterExecutor]:
    """An executor on the Dask cluster at ``scheduler`` (``tcp://host:port`` or a scheduler
    file written by ``dask scheduler --scheduler-file``), closed again at the end."""
    client = _connect(scheduler)
    try:
        if not client.nthreads():
            raise UnreachableError(f"{scheduler}: the Dask scheduler has no workers; start some with `dask worker`")
        client.register_plugin(_worker_settings(), name="geolabel-settings")
        yield ClusterExecutor(client)
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _connect(scheduler: str) -> Any:
    """A Client connected to ``scheduler``; one line when Dask is missing or nobody answers."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            f"{scheduler}: running on a Dask cluster needs Dask distributed: pip install 'geolabel[dask]'",
            params=("scheduler",),
        ) from None
    is_file = scheduler.endswith(".json") or Path(scheduler).is_file()
    if is_file and not Path(scheduler).is_file():
        raise InputError(f"{scheduler}: no such scheduler file", params=("scheduler",))
    address = _file_address(scheduler) if is_file else scheduler
    _probe(scheduler, address)
    try:
        return Client(address, timeout=CONNECT_SECONDS, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise UnreachableError(f"{scheduler}: no Dask scheduler answers ({first_line(exc)})") from None


def _file_address(path: str) -> str:
    """The scheduler address in a scheduler file (``dask scheduler --scheduler-file``)."""
    import json

    try:
        address = json.loads(Path(path).read_text())["address"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a Dask scheduler file ({first_line(exc)})", params=("scheduler",)) from None
    if not isinstance(address, str):
        raise InputError(f"{path}: not a Dask scheduler file (no address)", params=("scheduler",))
    return address


def _probe(scheduler: str, address: str) -> None:
    """Refuse a ``tcp://`` address nothing listens on at once (Dask would retry for
    :data:`CONNECT_SECONDS` before saying so)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp":
        return
    try:
        port = parts.port
        with socket.create_connection((parts.hostname or "127.0.0.1", port or 8786), timeout=CONNECT_SECONDS):
            pass
    except ValueError as exc:
        raise InputError(f"{scheduler}: not a scheduler address ({exc})", params=("scheduler",)) from None
    except OSError as exc:
        raise UnreachableError(f"{scheduler}: no Dask scheduler answers ({exc.strerror or exc})") from None


def _worker_settings() -> Any:
    """A worker plugin setting :data:`WORKER_ENV` on every worker, those that join (or are
    restarted) later included."""
    from distributed import WorkerPlugin

    class GeolabelSettings(WorkerPlugin):
        def setup(self, worker: Any) -> None:
            os.environ.update(WORKER_ENV)

    return GeolabelSettings()
