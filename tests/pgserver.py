"""A throwaway PostgreSQL/PostGIS server for the tests, on 127.0.0.1 and a free port.

``tests/run.sh`` starts one for the whole run (``python -m tests.pgserver start DIR`` prints
the superuser URL, ``stop DIR`` ends it) and passes the URL in ``GEOLABEL_TEST_PG``; a
plain ``pytest`` starts its own (tests/conftest.py). The cluster lives in a temporary
folder owned by the ``postgres`` user (initdb refuses root), without fsync, and is gone
after ``stop``. Logins: ``postgres`` without a password (the tests' admin); every other
role with its password (scram-sha-256), as on a real server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
URL_FILE = "url"


class ServerError(RuntimeError):
    """The test server could not start (the message says why)."""


def _as_postgres(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(folder: Path | None = None) -> tuple[Path, str]:
    """Start a server; returns its folder and the superuser URL."""
    if not (PG_BIN / "initdb").exists():
        raise ServerError(f"{PG_BIN}/initdb not found: install postgresql-15-postgis-3 (.ci/setup.sh --dev)")
    if not Path("/usr/share/postgresql/15/extension/postgis.control").exists():
        raise ServerError("PostGIS is not installed: apt-get install postgresql-15-postgis-3")
    folder = Path(folder or tempfile.mkdtemp(prefix="geolabel-pg."))
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    hba = "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    done = _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                         "--no-sync", "--no-instructions"])  # fmt: skip
    if done.returncode:
        raise ServerError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
    (data / "pg_hba.conf").write_text(hba)
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off " \
              "-c full_page_writes=off -c max_connections=60 -c password_encryption=scram-sha-256"  # fmt: skip
    done = _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                         "-w", "-t", "60", "start"])  # fmt: skip
    if done.returncode:
        log = (folder / "log").read_text(errors="replace")[-2000:] if (folder / "log").exists() else ""
        raise ServerError(f"the PostgreSQL server did not start: {done.stderr.strip()} {log}")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    (folder / URL_FILE).write_text(url)
    return folder, url


def stop(folder: Path) -> None:
    """Stop the server and delete its folder."""
    if (folder / "data").exists():
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"])
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else None
    if command == "start":
        try:
            print(start(where)[1])
        except ServerError as exc:
            print(f"pgserver: {exc}", file=sys.stderr)
            sys.exit(1)
    elif command == "stop" and where is not None:
        stop(where)
    else:
        sys.exit("usage: python -m tests.pgserver start [DIR] | stop DIR")
