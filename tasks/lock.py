"""The lock that keeps two syncs off the same tree, the same bucket and the same database.

Two layers, because a sync can be killed at any moment (SIGKILL, power cut) and must never
block the next one:

- an flock on the state directory: runs on one machine exclude each other, and the kernel
  releases the lock the moment its holder dies, however it dies;
- a Prefect global concurrency limit of one slot (`facelogin-sync`) when the run talks to a
  shared Prefect server: a deployment's own limit only counts runs of that deployment, so a
  nightly and a manual run on different machines could still overlap. The slot is leased: a
  live holder renews the lease, a dead one's lease expires on the server.

A run against a temporary API of its own (`facelogin sync` with no PREFECT_API_URL) takes only
the flock: no one else talks to that API, and a slot left in its database by a killed run would
otherwise stay taken forever.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from facelogin.files import open_private
from facelogin.settings import TEMPORARY_API_ENV

SYNC_LIMIT = "facelogin-sync"
LEASE_SECONDS = 60.0


class SyncBusy(RuntimeError):
    """Another sync holds the lock and did not finish within the time this run was willing to wait."""


def ensure_sync_limit(name: str = SYNC_LIMIT) -> bool:
    """Create the one-slot limit unless it exists; True when it was created now."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:  # another run created it in between
            return False
        return True


@contextmanager
def state_lock(
    state_dir: Path, timeout: float | None = None, on_wait: Callable[[int | None], None] | None = None
) -> Iterator[None]:
    """Hold the state directory's flock for the body; wait for another holder (up to `timeout`)."""
    fd = open_private(state_dir / "sync.lock", os.O_RDWR | os.O_CREAT)
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
        yield
    finally:
        os.close(fd)  # releases the flock


def _holder(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except ValueError:
        return None


@contextmanager
def sync_lock(
    state_dir: Path, name: str = SYNC_LIMIT, on_wait: Callable[[int | None], None] | None = None
) -> Iterator[None]:
    """Hold the sync lock for the body; a second sync waits here until the first is done."""
    with state_lock(state_dir, on_wait=on_wait):
        if os.environ.get(TEMPORARY_API_ENV):
            yield
            return
        from prefect.concurrency.sync import concurrency

        ensure_sync_limit(name)
        with concurrency(name, occupy=1, lease_duration=LEASE_SECONDS, strict=True):
            yield
