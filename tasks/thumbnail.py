"""Thumbnail stage: JPEGs written to the staging directory, never passed between tasks."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from facelogin import imaging
from facelogin.files import write_atomic


@task(task_run_name="thumbnail-{ref}")
def make_thumbnails(path: str, ref: str, keys: dict[str, str], staging: str) -> list[str]:
    """Make the photo's thumbnails (upright, RGB, no metadata) and stage them under their object keys."""
    thumbs = imaging.make_thumbnails(path, [int(size) for size in keys])
    for size, data in thumbs.items():
        write_atomic(Path(staging) / keys[str(size)], data)
    return sorted(keys.values())
