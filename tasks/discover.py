"""Discovery stage: every user folder and photo under the images root."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from facelogin import discover


@task(task_run_name="discover-photos")
def discover_photos(images: str) -> discover.Discovery:
    """Find every user folder and photo under the images root, hashing each photo's content."""
    return discover.discover_photos(Path(images))
