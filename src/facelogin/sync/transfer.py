"""Thumbnails on their way to the store: made into the staging directory, uploaded from it, cleaned up.

Image bytes never travel between tasks: a thumbnail is written under its object key in the
staging directory, and the upload reads it from there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from facelogin import faces, imaging
from facelogin.adapters.stores import ObjectStore
from facelogin.files import write_atomic
from facelogin.sync import progress

THUMB_TYPE = "image/jpeg"
THUMB_CACHE_CONTROL = "private, max-age=86400"


def stage_thumbnails(
    photos: dict[str, dict[str, str]], staging: Path, max_side: int
) -> dict[str, str | None]:
    """Make each photo's thumbnails (upright, RGB, no metadata) and stage them under their object keys.

    `photos` maps a photo's path to its keys per size; `max_side` is the encoders' detection size,
    so that these are the bytes an encoder would have staged. Returns, per path, None when staged
    or the reason the photo could not be decoded, so one bad photo does not fail the others.
    """
    outcome: dict[str, str | None] = {}
    for path, keys in photos.items():
        try:
            thumbs = imaging.make_thumbnails(path, [int(size) for size in keys], max_side)
        except imaging.PhotoError as exc:
            outcome[path] = str(exc)
            continue
        for size, data in thumbs.items():
            write_atomic(staging / keys[str(size)], data)
        outcome[path] = None
    return outcome


def encode_and_stage(
    path: str, keys: list[dict[str, str]], staging: str, max_side: int, upsample: int
) -> tuple[faces.FaceResult, str | None]:
    """Encode a photo's face and, if it is accepted, stage its thumbnails from the same decode.

    Run in an encoder process, so a photo is read and decoded once, not once per stage, and a
    rejected photo gets no thumbnails at all. `keys` holds the keys per size of every photo with
    this content (a copy filed under two names is encoded once and staged under both). Returns the
    face result, and None or why the thumbnails could not be written (a disk error: an error the
    next run retries, not a verdict on the photo).
    """
    result, image = faces.encode_photo(path, max_side, upsample)
    if result.status != faces.ENCODED or image is None or not keys:
        return result, None
    sizes = sorted({int(size) for key_set in keys for size in key_set})
    try:
        thumbs = imaging.make_thumbnails(path, sizes, max_side, decoded=image)
        for key_set in keys:
            for size, key in key_set.items():
                write_atomic(Path(staging) / key, thumbs[int(size)])
    except (OSError, imaging.PhotoError) as exc:
        return result, f"thumbnail failed: {exc}"
    return result, None


def upload_staged(store: ObjectStore, keys: list[str], staging: Path, threads: int = 1) -> int:
    """Upload staged thumbnails as image/jpeg objects, each dropped from staging once it is stored.

    Objects go `threads` at a time (or as the store sends many at once). A key no longer staged was
    stored by an earlier try of the same task: it is not sent again. The first failure stops what
    has not started and is raised; what is still staged is what is left. Returns how many objects
    this call uploaded.
    """
    folder = os.fspath(staging)
    todo = [(key, path) for key in keys if os.path.exists(path := os.path.join(folder, key))]
    store.put_files(
        todo, THUMB_TYPE, THUMB_CACHE_CONTROL, public=True, threads=threads,
        stored=lambda _key: progress.advance(progress.UPLOADED, 1),
    )  # fmt: skip
    return len(todo)


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
