"""The sample photos' encodings, computed once per test process: what a sync would store for them.

Many fixtures (the web's synced states, the login's bundles, the Pi's) start from the same photos;
the encodings are their setting, not what they test, so each photo is encoded once per xdist worker.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from facelogin.faces import encode_face

Encodings = dict[str, dict[str, list[float]]]  # user -> photo file name -> encoding


@cache
def _encoding(photo: Path, stamp: tuple[int, int]) -> tuple[float, ...]:
    result = encode_face(photo)
    assert result.encoding is not None, f"{photo}: {result.reason}"
    return tuple(result.encoding)


def encoding(photo: Path) -> list[float]:
    """The encoding of the one face in `photo` (a sample photo that has one), as the sync computes it."""
    info = photo.stat()
    return list(_encoding(photo.resolve(), (info.st_mtime_ns, info.st_size)))


def encode_tree(images: Path, pattern: str = "*/*") -> Encodings:
    """Every photo's encoding under `images/<User>/`."""
    out: Encodings = {}
    for photo in sorted(images.glob(pattern)):
        out.setdefault(photo.parent.name, {})[photo.name] = encoding(photo)
    return out


def per_user(images: Path, pattern: str = "*/*") -> dict[str, list[list[float]]]:
    """`encode_tree` as the bundle takes it: per user, the encodings in file-name order."""
    return {user: list(photos.values()) for user, photos in encode_tree(images, pattern).items()}
