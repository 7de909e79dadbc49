"""Upload stage: staged thumbnails to the object store, retrying transient faults only."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from facelogin.clients import open_store
from facelogin.settings import Settings
from tasks.retry import transient_s3

CACHE_CONTROL = "private, max-age=86400"


@task(task_run_name="upload-{username}", retry_condition_fn=transient_s3, retry_jitter_factor=0.5)
def upload_thumbnails(settings: Settings, username: str, keys: list[str], staging: str) -> int:
    """Upload a user's staged thumbnails as private image/jpeg objects; returns how many."""
    store = open_store(settings)
    for key in keys:
        store.put(key, (Path(staging) / key).read_bytes(), "image/jpeg", CACHE_CONTROL)
    for key in keys:
        (Path(staging) / key).unlink(missing_ok=True)
    return len(keys)


@task(task_run_name="check-store", retry_condition_fn=transient_s3, retry_jitter_factor=0.5)
def check_store(settings: Settings) -> str:
    """Check the bucket (or local store) exists and is reachable before any work is done."""
    store = open_store(settings)
    store.check()
    return store.location


@task(task_run_name="delete-stale-thumbnails", retry_condition_fn=transient_s3, retry_jitter_factor=0.5)
def delete_objects(settings: Settings, keys: list[str]) -> int:
    """Delete thumbnails of photos and users that are gone from the images root."""
    open_store(settings).delete(keys)
    return len(keys)
