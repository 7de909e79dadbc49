"""The lock that keeps two syncs off the same tree: a Prefect global concurrency limit of one slot.

A deployment's own concurrency limit only counts runs of that deployment, so a nightly run and a
manual `sync-now` run could still overlap; every sync takes a slot of this shared limit first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

SYNC_LIMIT = "facelogin-sync"
# A slot whose holder died (killed worker, power cut) is freed when its lease runs out; a live
# holder renews the lease in the background, so a long sync keeps it.
LEASE_SECONDS = 300.0


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
def sync_lock(name: str = SYNC_LIMIT, timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold the sync slot for the body; a second sync waits here until the first is done."""
    from prefect.concurrency.sync import concurrency

    ensure_sync_limit(name)
    with concurrency(name, occupy=1, timeout_seconds=timeout_seconds, lease_duration=LEASE_SECONDS,
                     strict=True):  # fmt: skip
        yield
