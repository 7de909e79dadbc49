"""Thumbnail stage: JPEGs written to the staging directory, never passed between tasks."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from facelogin import imaging
from facelogin.files import write_atomic


@task(task_run_name="thumbnail-{username}")
def make_thumbnails(username: str, photos: dict[str, dict[str, str]], staging: str) -> dict[str, str | None]:
    """Make a user's thumbnails (upright, RGB, no metadata) and stage them under their object keys.

    `photos` maps a photo's path to its keys per size. Returns, per path, None when staged or
    the reason the photo could not be decoded, so one bad photo does not fail the others.
    """
    outcome: dict[str, str | None] = {}
    for path, keys in photos.items():
        try:
            thumbs = imaging.make_thumbnails(path, [int(size) for size in keys])
        except imaging.PhotoError as exc:
            outcome[path] = str(exc)
            continue
        for size, data in thumbs.items():
            write_atomic(Path(staging) / keys[str(size)], data)
        outcome[path] = None
    return outcome
