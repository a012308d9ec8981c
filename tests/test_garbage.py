"""The engine's large jobs raise the GC thresholds while they run and put back what they found."""

from __future__ import annotations

import gc
import threading

from geolabel.garbage import THRESHOLDS, fewer_collections


def test_jobs_on_two_threads_share_the_thresholds_and_the_last_restores_them():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        inside, release = threading.Event(), threading.Event()

        def job() -> None:
            with fewer_collections():
                inside.set()
                release.wait(5)

        other = threading.Thread(target=job)
        with fewer_collections():
            other.start()
            assert inside.wait(5)
            assert gc.get_threshold() == THRESHOLDS
        assert gc.get_threshold() == THRESHOLDS  # the other job still runs
        release.set()
        other.join(5)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_thresholds_already_higher_are_left_alone():
    before = gc.get_threshold()
    gc.set_threshold(100_000, 30, 200)
    try:
        with fewer_collections():
            assert gc.get_threshold() == (100_000, 30, 200)
        assert gc.get_threshold() == (100_000, 30, 200)
    finally:
        gc.set_threshold(*before)
