"""Option parsers shared by several commands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

import click


class IntList(click.ParamType):
    """``1,2,3`` -> (1, 2, 3)."""

    name = "LIST"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(int(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)


class StoreLocation(click.ParamType):
    """A label store: a ``.gpkg`` path, or a PostgreSQL location passed on as it is (never
    echoed: messages show ``store.uri``, which has no password)."""

    name = "STORE"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        from geolabel.labels.pg_location import is_postgres_location

        text = str(value)
        if is_postgres_location(text):
            return text
        return str(click.Path(dir_okay=False).convert(text, param, ctx))


#: The STORE argument of every command that reads or writes a label store.
STORE = StoreLocation()


class Progress:
    """A tqdm bar fed with fractions (0..1), as the engine reports them."""

    def __init__(self, desc: str, *, quiet: bool) -> None:
        self._desc = desc
        self._quiet = quiet
        self._bar: Any = None  # created on the first report, so errors print without a bar

    def __call__(self, fraction: float) -> None:
        if self._quiet:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=1000,
                desc=self._desc,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
                disable=None,  # no bar when stderr is not a terminal (logs, CI)
            )
        target = int(round(fraction * 1000))
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def scheduler_option(command: Any) -> Any:
    """``--scheduler``: run the command's tasks on an existing Dask cluster."""
    from geolabel.cluster import SCHEDULER_ENV

    return click.option(
        "--scheduler",
        default=None,
        envvar=SCHEDULER_ENV,
        help=f"Run on this Dask cluster: tcp://HOST:PORT or a scheduler file (also ${SCHEDULER_ENV}).",
    )(command)


@contextlib.contextmanager
def batch_executor(scheduler: str | None, workers: int | None) -> Iterator[Executor | None]:
    """The executor of a batch command: the cluster at ``scheduler``, else None (local
    worker processes, ``workers`` of them)."""
    if not scheduler:
        yield None
        return
    if workers is not None:
        from click.core import ParameterSource

        from_env = click.get_current_context().get_parameter_source("scheduler") == ParameterSource.ENVIRONMENT
        why = "$GEOLABEL_SCHEDULER is set: unset it to run here" if from_env else "a cluster has its own workers"
        raise click.UsageError(f"--workers and --scheduler exclude each other ({why})")
    from geolabel.cluster import cluster_executor

    with cluster_executor(scheduler) as executor:
        yield executor
