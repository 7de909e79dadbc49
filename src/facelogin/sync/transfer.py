"""Thumbnails on their way to the store: made into the staging directory, uploaded from it, cleaned up.

Image bytes never travel between tasks: a thumbnail is written under its object key in the
staging directory, and the upload reads it from there.
"""

from __future__ import annotations

import os
import shutil
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
    """Upload staged thumbnails as image/jpeg objects, each dropped from staging once it is stored.

    A key no longer staged was stored by an earlier try of the same task: it is not sent again.
    Returns how many objects this call uploaded.
    """
    sent = 0
    for key in keys:
        source = staging / key
        if not os.path.exists(source):
            continue
        store.put_file(key, source, THUMB_TYPE, THUMB_CACHE_CONTROL, public=True)
        sent += 1
    return sent


def pending(staging: Path, keys: list[str]) -> set[str]:
    """The keys still staged: not in the store yet."""
    return {key for key in keys if (staging / key).exists()}


def clear_staging(staging: Path) -> None:
    """Drop whatever an earlier run left staged (a killed run): every run stages what it uploads."""
    if staging.is_dir():
        shutil.rmtree(staging)


def discard_staged(staging: Path, keys: list[str]) -> None:
    for key in keys:
        (staging / key).unlink(missing_ok=True)
