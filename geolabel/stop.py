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
