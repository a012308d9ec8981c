"""Many writers on a few hot labels lose no update, on both backends.

8 processes each make 500 read-modify-write changes to 20 labels through the engine: read a
label's counter (its ``comment``) and version, write counter + 1 with
``update(expected_version=...)``, and read again after a :class:`ConflictError`. The
counters must add up to 4000, every label's version must be 1 + its counter, and the
history must hold 4000 updates: no change lost, none applied twice. The GeoPackage store
serialises writers with BEGIN IMMEDIATE and the busy timeout, PostGIS with row locks and
the version check of its update trigger.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from typing import Any

import shapely

from geolabel.labels.store import ConflictError, create_store, open_store

WORKERS = 8
ROUNDS = 500
LABELS = 20
#: Seconds a writer waits for the lock (GEOLABEL_BUSY_TIMEOUT's default of 10 is for people).
TIMEOUT = 120.0


def hammer(location: str, worker: int, label_ids: list[str], start: Any, results: Any) -> None:
    """One writer: ROUNDS counter increments on random hot labels, retried after conflicts."""
    try:
        rng = random.Random(worker)
        conflicts = 0
        with open_store(location, timeout=TIMEOUT) as store:
            start.wait()
            for _ in range(ROUNDS):
                conflicts += increment(store, rng.choice(label_ids))
        results.put((worker, conflicts))
    except BaseException as exc:  # the parent fails the test with it
        results.put((worker, f"{type(exc).__name__}: {exc}"))


def increment(store: Any, label_id: str) -> int:
    """Add one to a label's counter; returns the conflicts it met on the way."""
    conflicts = 0
    while True:
        now = store.read(label_ids=[label_id], fields=["comment", "version"])
        counter, version = int(now.columns["comment"][0]), int(now.columns["version"][0])
        try:
            store.update(label_id, expected_version=version, comment=str(counter + 1))
            return conflicts
        except ConflictError:
            conflicts += 1


def run_writers(location: str, label_ids: list[str]) -> tuple[list[Any], float]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(WORKERS + 1), ctx.Queue()
    procs = [ctx.Process(target=hammer, args=(str(location), w, label_ids, start, results)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    start.wait(timeout=120)
    began = time.monotonic()
    outcomes = [results.get(timeout=600) for _ in procs]
    elapsed = time.monotonic() - began
    for p in procs:
        p.join(timeout=60)
    return outcomes, elapsed


def test_eight_writers_on_twenty_hot_labels_lose_no_update(store_location, backend):
    location = store_location("hot")
    with create_store(location, crs="EPSG:32649") as store:
        boxes = [shapely.box(686400 + 20 * i, 3120900, 686410 + 20 * i, 3120910) for i in range(LABELS)]
        label_ids = store.add_geometries(boxes, class_codes=[1] * LABELS, comment="0")
    outcomes, elapsed = run_writers(str(location), label_ids)
    failures = [o for o in outcomes if not isinstance(o[1], int)]
    assert not failures, failures
    conflicts = sum(o[1] for o in outcomes)
    with open_store(location) as store:
        final = store.read(fields=["label_id", "comment", "version"])
        updates = [e for e in store.history() if e.action == "update"]
    counters = [int(c) for c in final.columns["comment"]]
    print(f"\n{backend}: {WORKERS} writers x {ROUNDS} updates in {elapsed:.1f} s, {conflicts} conflicts retried")
    assert sum(counters) == WORKERS * ROUNDS
    assert [v - 1 for v in final.columns["version"]] == counters
    assert len(updates) == WORKERS * ROUNDS
