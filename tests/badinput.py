"""Helpers for bad-input tests: run the real ``geolabel`` command in a subprocess and check
what a user sees.

A bad input must give exactly one stderr line ``geolabel: error: <file>: <problem>`` (no
traceback, no GDAL or Python warning lines), the documented exit code, no partial output,
and leave every input byte-identical. A subprocess (not click's CliRunner) is used so
that what GDAL prints at the C level and Python's own warnings are seen too.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_geolabel(*args: object, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> Result:
    """``python -m geolabel ARGS`` in ``cwd``; stderr is not a terminal, so no progress bar."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "geolabel", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


#: Exit code of an output that cannot be written (geolabel.errors.OutputError).
EXIT_OUTPUT = 73


def assert_one_line_error(res: Result, *, code: int = 2, contains: str = "", file: str | None = None) -> str:
    """The run failed with ``code`` and said so in one ``geolabel: error:`` line (returned)."""
    assert "Traceback" not in res.stderr, res.stderr
    assert res.code == code, f"exit {res.code} != {code}\n{res.stderr}"
    assert len(res.lines) == 1, f"expected one stderr line, got:\n{res.stderr}"
    line = res.lines[0]
    assert line.startswith("geolabel: error: "), line
    if file is not None:
        assert line.startswith(f"geolabel: error: {file}"), line
    assert contains.lower() in line.lower(), f"{contains!r} not in {line!r}"
    return line


def tree_state(*roots: Path) -> dict[str, str]:
    """sha256 of every file below ``roots`` (or of the files themselves), plus symlink targets."""
    state: dict[str, str] = {}
    for root in roots:
        paths = [root] if not root.is_dir() else sorted(root.rglob("*"))
        for p in paths:
            if p.is_symlink():
                state[str(p)] = "-> " + os.readlink(p)
            elif p.is_file():
                state[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                state[str(p)] = "dir"
    return state
