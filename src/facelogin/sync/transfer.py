"""Thumbnails on their way to the store: made into the staging directory, uploaded from it, cleaned up.

Image bytes never travel between tasks: a thumbnail is written under its object key in the
staging directory, and the upload reads it from there.
"""

from __future__ import annotations

from pathlib import Path

from facelogin import imaging
from facelogin.adapters.store import ObjectStore
from facelogin.files import write_atomic

THUMB_TYPE = "image/jpeg"
THUMB_CACHE_CONTROL = "private, max-age=86400"


def stage_thumbnails(photos: dict[str, dict[str, str]], staging: Path) -> dict[str, str | None]:
    """Make each photo's thumbnails (upright, RGB, no metadata) and stage them under their object keys.

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
            write_atomic(staging / keys[str(size)], data)
        outcome[path] = None
    return outcome


def upload_staged(store: ObjectStore, keys: list[str], staging: Path) -> int:
    """Upload staged thumbnails as private image/jpeg objects, then drop them from staging."""
    for key in keys:
        store.put(key, (staging / key).read_bytes(), THUMB_TYPE, THUMB_CACHE_CONTROL)
    discard_staged(staging, keys)
    return len(keys)


def discard_staged(staging: Path, keys: list[str]) -> None:
    for key in keys:
        (staging / key).unlink(missing_ok=True)
