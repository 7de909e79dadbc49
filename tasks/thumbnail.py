"""Thumbnail stage: JPEGs written to the staging directory, never passed between tasks."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.futures import PrefectFuture

from facelogin.sync.transfer import stage_thumbnails


@task(task_run_name="thumbnail-{username}")
def make_thumbnails(username: str, photos: dict[str, dict[str, str]], staging: str) -> dict[str, str | None]:
    """Make a user's thumbnails (upright, RGB, no metadata) and stage them under their object keys.

    Returns, per photo path, None when staged or the reason it could not be decoded.
    """
    return stage_thumbnails(photos, Path(staging))


def start_thumbnails(
    jobs: dict[str, dict[str, dict[str, str]]], staging: str
) -> dict[str, PrefectFuture[dict[str, str | None]]]:
    """One thumbnail task per user, started on the flow's threads while the encoders run.

    Thumbnails do not depend on the face check, and making them alongside it uses the time the
    encoding processes spend starting; those of photos the check rejects are dropped unused.
    """
    return {user: make_thumbnails.submit(user, photos, staging) for user, photos in jobs.items()}
