"""Stop requests from a front end's signal handlers (the CLI's Ctrl-C and SIGTERM).

A signal handler that raises ``KeyboardInterrupt`` is not enough on its own: when the
signal lands while the interpreter runs a finalizer or a weak-reference callback, CPython
reports the exception as "ignored" and the run goes on (seen: a Ctrl-C lost in about 1
of 60 early interrupts of ``geolabel tile``). So the handler also records the signal
here, and batch loops (:func:`geolabel.parallel.run_tasks`) check between tasks.
No imports: a signal handler may call this at any moment.
"""

from __future__ import annotations

_requested: list[int] = []


def request_stop(signum: int) -> None:
    """Record that signal ``signum`` asked the running job to stop."""
    _requested.append(signum)


def stop_requested() -> int | None:
    """The first signal that asked to stop, or None."""
    return _requested[0] if _requested else None


def clear_stop() -> None:
    """Forget earlier requests (a new command starts)."""
    _requested.clear()


_deferring: list[bool] = []


def is_deferring() -> bool:
    """Whether a :func:`deferred` section runs: a signal handler should only record."""
    return bool(_deferring)


class deferred:
    """A section a Ctrl-C must not cut in half (a GDAL write whose half-closed dataset
    fails again when it is garbage-collected). The CLI's handler only records a signal
    that arrives inside; it is delivered again as the section ends.

    >>> with deferred():
    ...     is_deferring()
    True
    """

    def __enter__(self) -> None:
        self._before = stop_requested()
        _deferring.append(True)

    def __exit__(self, *exc: object) -> None:
        _deferring.pop()
        signum = stop_requested()
        if not _deferring and signum is not None and self._before is None:
            import _thread
            import signal

            _thread.interrupt_main(signal.Signals(signum))  # the handler runs again, outside the section
