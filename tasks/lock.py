"""The lock that keeps two syncs off the same tree, the same bucket and the same database.

Two layers, because a sync can be killed at any moment (SIGKILL, power cut) and must never
block the next one:

- an flock on the state directory (facelogin.sync.lock): runs on one machine exclude each other,
  and the kernel releases the lock the moment its holder dies, however it dies. `facelogin sync`
  takes it before the flow it runs in its own process does (the lock is re-entrant there);
- a Prefect global concurrency limit of one slot (`facelogin-sync`) when the run talks to a
  shared Prefect server: a deployment's own limit only counts runs of that deployment, so a
  nightly and a manual run on different machines could still overlap. The slot is leased: a
  live holder renews the lease, a dead one's lease expires on the server.

A run against a temporary API of its own (`facelogin sync` with no PREFECT_API_URL) takes only
the flock: no one else talks to that API, and a slot left in its database by a killed run would
otherwise stay taken forever.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from facelogin.settings import TEMPORARY_API_ENV
from facelogin.sync.lock import SyncBusy, state_lock

__all__ = ["SYNC_LIMIT", "SyncBusy", "ensure_sync_limit", "state_lock", "sync_lock"]

SYNC_LIMIT = "facelogin-sync"
LEASE_SECONDS = 60.0


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
