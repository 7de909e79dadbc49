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
    """Check the bucket (or local store) exists and answers before any work is done; the store the
    uploads use gets ready in the background while the photos encode."""
    where = connect.check_store(settings)
    open_store(settings).prepare()
    return where


@task(task_run_name="upload-{label}", **S3_RETRIES)
def upload_thumbnails(settings: Settings, label: str, keys: list[str], staging: str, threads: int = 1) -> int:
    """Upload staged thumbnails, `threads` at a time, each object once: a retry sends only what an
    earlier try did not."""
    return upload_staged(open_store(settings), keys, Path(staging), threads)


# Threads per upload task run (to S3 through the AWS CRT: 4 x this many objects in flight, on the
# CRT's own threads). Each task run costs the API (and a server on a small machine) CPU that the
# uploads need: one run with 16 threads uploaded 1.26x as fast as 4 runs of 4 (SeaweedFS, 408
# thumbnails, 4 alternated pairs), and a run per 256 objects left its last objects to few threads.
# FACELOGIN_IO_THREADS above 16 runs more of them at once.
UPLOAD_THREADS = 16
MOST_PER_UPLOAD = 2000  # objects per task run: a first sync of 20,000 objects is 10 runs


@task(task_run_name="delete-stale-thumbnails", **S3_RETRIES)
def delete_objects(settings: Settings, keys: list[str]) -> int:
    """Delete thumbnails of photos and users that are gone from the images root."""
    open_store(settings).delete(keys)
    return len(keys)


def upload_all(settings: Settings, jobs: dict[str, list[str]], staging: str) -> dict[str, str]:
    """Upload every user's staged objects over FACELOGIN_IO_THREADS threads; the keys left, with their
    errors (one line naming the bucket and the endpoint).

    Objects go in batches over all users, each batch a task run with threads of its own, so a user
    with many photos uses every thread and a task retry re-sends only the objects not yet stored.
    """
    total = sum(len(keys) for keys in jobs.values())
    every = [(user, key) for user, keys in jobs.items() for key in keys]
    if settings.embedded_store:
        # A local store takes a thumbnail by renaming it: a task run per 2,000 objects is plenty.
        runs, threads, size = 1, 1, 2000
        batches = [
            (f"local-{i // size + 1}", [k for _, k in every[i : i + size]]) for i in range(0, total, size)
        ]
    else:
        runs = max(1, settings.io_threads // UPLOAD_THREADS)
        threads = max(1, settings.io_threads // runs)
        size = max(1, min(MOST_PER_UPLOAD, math.ceil(total / runs)))
        batches = [
            (_label(every, i, size), [k for _, k in every[i : i + size]]) for i in range(0, total, size)
        ]
    failed: dict[str, str] = {}
    runner: Any = ThreadPoolTaskRunner(max_workers=runs)  # Prefect's typing wants coroutines
    with runner:
        common = {"settings": settings, "staging": staging, "threads": threads}
        futures = [
            runner.submit(upload_thumbnails, {**common, "label": label, "keys": keys})
            for label, keys in batches
        ]
        progress.advance(progress.UPLOADED, 0, total)  # the task runs tell of each object stored
        for (_, keys), future in zip(batches, futures, strict=True):
            _, error = outcome_of(future)
            if error is not None:
                left = pending(Path(staging), keys)
                progress.advance(progress.UPLOADED, len(left), total)  # done with, if not stored
                failed |= dict.fromkeys(left, connect.failure_message(error, settings))
    return failed


def _label(every: list[tuple[str, str]], start: int, size: int) -> str:
    """`Obama`, `Obama-2` (the user's second batch), `Biden+2` (and two more users): names a task run."""
    users = list(dict.fromkeys(user for user, _ in every[start : start + size]))
    first = users[0]
    part = sum(1 for i in range(0, start, size) if every[i][0] == first or every[i + size - 1][0] == first)
    name = first if part == 0 else f"{first}-{part + 1}"
    return name if len(users) == 1 else f"{name}+{len(users) - 1}"
