"""A loopback HTTP server with Range support, for remote-scene tests.

Serves one folder on 127.0.0.1 (a free port), answers ``HEAD`` and ``GET`` with a single
``Range: bytes=a-b`` (206 + ``Content-Range``), counts the bytes it serves per path and
can be told to fail: the next N requests to a path get 503, a path always answers 403.

>>> with RangeServer(folder) as server:  # doctest: +SKIP
...     url = server.url("scene.tif")
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeServer:
    """The server, its counters and its failure switches (thread-safe)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.served: Counter[str] = Counter()  # body bytes sent, per path
        self.requests: Counter[str] = Counter()
        self.fail_next: Counter[str] = Counter()  # path -> how many more 503s
        self.forbidden: set[str] = set()
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def reset(self) -> None:
        with self.lock:
            self.served.clear()
            self.requests.clear()

    def __enter__(self) -> RangeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: RangeServer) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(server.folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path = self.path.split("?")[0].lstrip("/")
            with server.lock:
                server.requests[path] += 1
                failing = server.fail_next[path] > 0
                if failing:
                    server.fail_next[path] -= 1
            if failing:
                return self._status(503)
            if path in server.forbidden:
                return self._status(403)
            file = server.folder / path
            if not file.is_file():
                return self._status(404)
            data = file.read_bytes()
            start, end, status = _byte_range(self.headers.get("Range"), len(data))
            if status == 416:
                return self._status(416)
            self.send_response(status)
            self.send_header("Content-Type", "image/tiff")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.end_headers()
            if body:
                with server.lock:  # counted first: the client may go on before write returns
                    server.served[path] += end - start
                self.wfile.write(data[start:end])

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def _byte_range(header: str | None, total: int) -> tuple[int, int, int]:
    """(start, end exclusive, status) for a single-range ``Range`` header."""
    m = _RANGE.match(header or "")
    if m is None:
        return 0, total, 200
    first, last = m.groups()
    if not first:  # suffix range: the last N bytes
        return max(0, total - int(last)), total, 206
    start = int(first)
    end = min(total, int(last) + 1) if last else total
    if start >= total:
        return 0, 0, 416
    return start, end, 206


@pytest.fixture(scope="module")
def range_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeServer]:
    """A :class:`RangeServer` of an empty folder, for the tests of one module; tests put
    files in ``server.folder`` under names of their own (GDAL caches what it read of a
    URL for the life of the process)."""
    with RangeServer(tmp_path_factory.mktemp("served")) as server:
        yield server
