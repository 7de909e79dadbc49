"""Upload stage: staged thumbnails to the object store, per object, retrying transient faults only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from prefect import task
from prefect.task_runners import ThreadPoolTaskRunner

from facelogin.adapters import connect
from facelogin.adapters.connect import open_store
from facelogin.settings import Settings
from facelogin.sync import progress
from facelogin.sync.transfer import pending, upload_staged
from tasks.policy import PLAIN, S3_RETRIES, outcome_of


# No task retries: botocore already retried each request, and a store that does not answer
# should fail the run in seconds, not after minutes of retries.
@task(task_run_name="check-store", **PLAIN)
def check_store(settings: Settings) -> str:
    """Check the bucket (or local store) exists and answers before any work is done."""
    return connect.check_store(settings)


@task(task_run_name="upload-{label}", **S3_RETRIES)
def upload_thumbnails(settings: Settings, label: str, keys: list[str], staging: str) -> int:
    """Upload staged thumbnails, each object once: a retry sends only what an earlier try did not."""
    return upload_staged(open_store(settings), keys, Path(staging))


@task(task_run_name="delete-stale-thumbnails", **S3_RETRIES)
def delete_objects(settings: Settings, keys: list[str]) -> int:
    """Delete thumbnails of photos and users that are gone from the images root."""
    open_store(settings).delete(keys)
    return len(keys)


def upload_all(settings: Settings, jobs: dict[str, list[str]], staging: str) -> dict[str, BaseException]:
    """Upload every user's staged objects over FACELOGIN_IO_THREADS threads; the keys left, with their errors.

    Objects go in small batches, so a user with many photos uses every thread, and a retry
    concerns a handful of objects rather than a whole user.
    """
    total = sum(len(keys) for keys in jobs.values())
    if settings.embedded_store:
        # A local store takes a thumbnail by renaming it: a task run per 2,000 objects is plenty.
        every = [key for keys in jobs.values() for key in keys]
        batches = [(f"local-{i // 2000 + 1}", every[i : i + 2000]) for i in range(0, len(every), 2000)]
    else:
        size = max(1, min(32, math.ceil(total / (settings.io_threads * 2))))
        batches = [
            (user if i == 0 else f"{user}-{i // size + 1}", keys[i : i + size])
            for user, keys in jobs.items()
            for i in range(0, len(keys), size)
        ]
    failed: dict[str, BaseException] = {}
    runner: Any = ThreadPoolTaskRunner(max_workers=settings.io_threads)  # Prefect's typing wants coroutines
    with runner:
        common = {"settings": settings, "staging": staging}
        futures = [
            runner.submit(upload_thumbnails, {**common, "label": label, "keys": keys})
            for label, keys in batches
        ]
        for (_, keys), future in zip(batches, futures, strict=True):
            _, error = outcome_of(future)
            progress.advance(progress.UPLOADED, len(keys), total)
            if error is not None:
                failed |= dict.fromkeys(pending(Path(staging), keys), error)
    return failed
