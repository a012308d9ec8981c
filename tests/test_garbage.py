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


KEEPER = """
import atexit, gc, sys
from geolabel import garbage

class Loud:
    def __del__(self):
        print("freed", flush=True)

if sys.argv[1] == "program":
    garbage.keep_from_now()
atexit.register(gc.freeze)  # as the command line does
garbage.keep_to_exit([Loud()])
print("done", flush=True)
"""


def test_the_program_leaves_what_it_keeps_to_the_exit_and_the_library_keeps_nothing(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "keeper.py"
    script.write_text(KEEPER)
    outputs = {
        how: subprocess.run([sys.executable, str(script), how], capture_output=True, text=True, check=True).stdout
        for how in ("program", "library")
    }
    assert outputs["program"] == "done\n"  # never freed one by one, not even as Python ends
    assert outputs["library"] == "freed\ndone\n"  # not kept: freed as soon as it is dropped
