"""Discovery stage: every user folder and photo under the images root."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from facelogin.sync.discover import Discovery
from facelogin.sync.discover import discover_photos as find_photos


@task(task_run_name="discover-photos")
def discover_photos(images: str) -> Discovery:
    """Find every user folder and photo under the images root, hashing each photo's content."""
    return find_photos(Path(images))
