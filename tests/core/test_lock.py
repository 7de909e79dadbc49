"""The state directory's lock: re-entrant within a thread, exclusive between threads and processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from facelogin.sync.lock import SyncBusy, state_lock

HOLD_ELSEWHERE = """
import sys
from pathlib import Path
from facelogin.sync.lock import SyncBusy, state_lock
try:
    with state_lock(Path(sys.argv[1]), timeout=0.2):
        print("got it")
except SyncBusy as exc:
    print(f"busy: {exc}")
"""


def other_process_gets(state: Path) -> str:
    done = subprocess.run([sys.executable, "-c", HOLD_ELSEWHERE, str(state)], capture_output=True, text=True)
    return done.stdout.strip()


def test_the_same_thread_takes_it_again_and_it_is_released_with_the_outer_block(tmp_path: Path) -> None:
    with state_lock(tmp_path):
        with state_lock(tmp_path):  # the flow inside `facelogin sync`: no wait, no deadlock
            pass
        assert other_process_gets(tmp_path).startswith("busy: another sync")  # still held
    assert other_process_gets(tmp_path) == "got it"


def test_another_thread_waits_like_another_process(tmp_path: Path) -> None:
    told: list[int | None] = []
    outcome: list[str] = []

    def other() -> None:
        try:
            with state_lock(tmp_path, timeout=0.3, on_wait=told.append):
                outcome.append("got it")
        except SyncBusy:
            outcome.append("busy")

    with state_lock(tmp_path):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert outcome == ["busy"]
    assert told == [os.getpid()]
