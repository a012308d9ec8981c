"""A real Dask distributed cluster on loopback for the tests: a scheduler and workers as
separate processes, started with Dask's own commands as a user would start them.

Workers run in their own folder (not the tests'), so a task that used a relative path
would fail or write in the wrong place instead of passing by accident. They run without
a nanny, so killing a worker's PID really takes it away (a nanny would restart it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Dask's own command, as a user runs it: ``dask scheduler`` and ``dask worker``
DASK = str(Path(sys.executable).parent / "dask")
SCHEDULER = [DASK, "scheduler"]
WORKER = [DASK, "worker"]
START_SECONDS = 60


@dataclass
class Cluster:
    folder: Path
    scheduler_file: Path
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_worker(self, name: str) -> subprocess.Popen[bytes]:
        """Start one more worker (one thread) and wait until the scheduler lists it."""
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - the process keeps writing it
        proc = subprocess.Popen(
            [*WORKER, self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name],
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        self.workers.append(proc)
        self.wait_for_workers(lambda names: name in names)
        return proc

    def worker_names(self) -> set[str]:
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return {w["name"] for w in client.scheduler_info()["workers"].values()}

    def wait_for_workers(self, ready, timeout: float = START_SECONDS) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ready(self.worker_names()):
                return
            time.sleep(0.2)
        raise RuntimeError(f"Dask workers did not register in {timeout} s; logs in {self.folder}")

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
    env.pop("GEOLABEL_SCHEDULER", None)
    return env


def start(folder: Path, workers: int = 2) -> Cluster:
    """Start ``dask scheduler`` on 127.0.0.1 (a free port, its address in a scheduler file)
    and ``workers`` single-thread workers; fails with the logs' folder if they do not start."""
    folder.mkdir(parents=True, exist_ok=True)
    sched_file = folder / "scheduler.json"
    log = open(folder / "scheduler.log", "wb")  # noqa: SIM115 - the process keeps writing it
    proc = subprocess.Popen(
        [*SCHEDULER, "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(sched_file), "--no-dashboard"],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
    )
    end = time.monotonic() + START_SECONDS
    while not sched_file.exists() or not sched_file.read_text().strip().endswith("}"):
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"dask scheduler did not start; log: {folder / 'scheduler.log'}")
        time.sleep(0.1)
    cluster = Cluster(folder, sched_file, json.loads(sched_file.read_text())["address"], proc)
    try:
        for i in range(workers):
            cluster.add_worker(f"worker-{i}")
    except BaseException:
        cluster.stop()
        raise
    return cluster
