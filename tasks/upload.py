"""Upload stage: staged thumbnails to the object store, retrying transient faults only."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from facelogin.adapters.connect import open_store
from facelogin.settings import Settings
from facelogin.sync.transfer import upload_staged
from tasks.policy import S3_RETRIES, outcome_of


@task(task_run_name="check-store", **S3_RETRIES)
def check_store(settings: Settings) -> str:
    """Check the bucket (or local store) exists and is reachable before any work is done."""
    store = open_store(settings)
    store.check()
    return store.location


@task(task_run_name="upload-{username}", **S3_RETRIES)
def upload_thumbnails(settings: Settings, username: str, keys: list[str], staging: str) -> int:
    """Upload a user's staged thumbnails as private image/jpeg objects; returns how many."""
    return upload_staged(open_store(settings), keys, Path(staging))


@task(task_run_name="delete-stale-thumbnails", **S3_RETRIES)
def delete_objects(settings: Settings, keys: list[str]) -> int:
    """Delete thumbnails of photos and users that are gone from the images root."""
    open_store(settings).delete(keys)
    return len(keys)


def upload_all(
    settings: Settings, jobs: dict[str, list[str]], staging: str
) -> dict[str, BaseException | None]:
    """Upload each user's staged thumbnails in parallel; per user, None or the error it ended with."""
    futures = {user: upload_thumbnails.submit(settings, user, keys, staging) for user, keys in jobs.items()}
    return {user: outcome_of(future)[1] for user, future in futures.items()}
