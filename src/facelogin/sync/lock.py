"""The state directory's lock: one sync at a time per machine and state directory (no Prefect).

An flock, which the kernel releases the moment its holder dies, however it dies, so a killed
sync never blocks the next one. It is re-entrant within a thread: `facelogin sync` takes it
before the temporary Prefect API starts, and the flow it then runs in the same thread (which
takes it too, as every run does) finds it already held.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from facelogin.files import open_private

LOCK_FILE = "sync.lock"

# state directory (real path) -> how many blocks of this thread hold it. Per thread: another
# thread waits for the lock as another process would.
_held = threading.local()


class SyncBusy(RuntimeError):
    """Another sync holds the lock and did not finish within the time this run was willing to wait."""


@contextmanager
def state_lock(
    state_dir: Path, timeout: float | None = None, on_wait: Callable[[int | None], None] | None = None
) -> Iterator[None]:
    """Hold the state directory's flock for the body; wait for another holder (up to `timeout`).

    `on_wait(pid)` is called once when another process holds it.
    """
    key = os.path.realpath(state_dir)
    held: dict[str, int] = _held.__dict__
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    fd = open_private(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(_holder(fd))
                    told = True
                if deadline is not None and time.monotonic() > deadline:
                    raise SyncBusy(
                        f"another sync (pid {_holder(fd)}) is still running in {state_dir}; try again later"
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        held[key] = 1
        try:
            yield
        finally:
            del held[key]
    finally:
        os.close(fd)  # releases the flock


def _holder(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except ValueError:
        return None
