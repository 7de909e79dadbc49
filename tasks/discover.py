"""Discovery stage: every user folder and photo under the images root."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from facelogin.sync import progress, statcache
from facelogin.sync.discover import Discovery
from facelogin.sync.discover import discover_photos as find_photos
from tasks.policy import PLAIN


@task(task_run_name="discover-photos", **PLAIN)
def discover_photos(images: str, stat_cache: str | None = None) -> Discovery:
    """Find every user folder and photo under the images root, hashing only new or changed photos."""
    known = statcache.load(Path(stat_cache)) if stat_cache else {}
    found = find_photos(Path(images), known)
    progress.advance(progress.HASHED, 0, total=found.hashed)  # now it is known: the bar completes
    if stat_cache and found.hashes != known:
        statcache.save(Path(stat_cache), found.hashes)
    return found
