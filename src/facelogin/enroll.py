"""Enrol a person: check their photos and copy them into images/<Username>/ as <username>_NN.jpg.

Each photo must be readable and show exactly one face (the same check the sync makes), so a
bad photo is turned away at the desk with its reason instead of showing up in the nightly report.
JPEGs are copied byte for byte: the sync applies their EXIF orientation itself, and the original
stays the source of truth for later re-training. Other formats are saved as JPEG (upright,
quality 95) so every enrolled file follows the `<username>_NN.jpg` convention. Every file is
written atomically: a crash leaves the old state or a complete photo, never half of one.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from facelogin.faces import ENCODED, FaceResult
from facelogin.files import write_atomic
from facelogin.naming import is_photo_name, name_problem

log = logging.getLogger(__name__)

JPEG_QUALITY = 95
_JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
_JPEG_MAGIC = b"\xff\xd8\xff"

Checker = Callable[[Path], FaceResult]


class EnrollError(ValueError):
    """The enrolment cannot start at all (bad username, no photos); the message says why."""


@dataclass(frozen=True)
class Verdict:
    """What happened to one source photo."""

    source: str
    accepted: bool
    target: str | None = None
    reason: str | None = None


@dataclass
class Enrolment:
    username: str
    folder: str
    accepted: list[Verdict] = field(default_factory=list)
    rejected: list[Verdict] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "username": self.username,
            "folder": self.folder,
            "accepted": [asdict(v) for v in self.accepted],
            "rejected": [asdict(v) for v in self.rejected],
        }


def photo_stem(username: str) -> str:
    """The file-name stem for a user's photos: `Matthew` -> `matthew`, `Lin Manuel` -> `lin_manuel`."""
    return re.sub(r"\s+", "_", username.strip()).lower()


def next_names(existing: Iterable[str], username: str, count: int) -> list[str]:
    """`count` free names `<stem>_NN.jpg`, numbered after the highest one in use (never reused)."""
    stem = photo_stem(username)
    pattern = re.compile(rf"^{re.escape(stem)}_(\d+)\.[^.]+$", re.IGNORECASE)
    used = [int(m.group(1)) for name in existing if (m := pattern.match(name))]
    start = max(used, default=0) + 1
    width = max(2, len(str(start + count - 1)))
    return [f"{stem}_{n:0{width}d}.jpg" for n in range(start, start + count)]


def source_photos(source: Path) -> list[Path]:
    """The photos in `source` (a folder, not recursive, or one file), sorted by name."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise EnrollError(f"{source} is not a folder or a photo")
    photos = sorted(p for p in source.iterdir() if p.is_file() and is_photo_name(p.name))
    if not photos:
        raise EnrollError(f"no photos (.jpg, .jpeg, .png, .webp) in {source}")
    return photos


def jpeg_bytes(path: Path) -> bytes:
    """The bytes to store for `path`: a JPEG as it is, anything else converted to an upright JPEG."""
    data = path.read_bytes()
    if path.suffix.lower() in _JPEG_SUFFIXES and data.startswith(_JPEG_MAGIC):
        return data
    from facelogin.imaging import open_photo

    image = open_photo(path)  # upright RGB: the orientation is baked in, metadata dropped
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def default_checker(max_side: int = 640, upsample: int = 1) -> Checker:
    from facelogin.faces import encode_face

    return lambda path: encode_face(path, max_side=max_side, upsample=upsample)


def enroll(username: str, sources: list[Path], images: Path, check: Checker | None = None) -> Enrolment:
    """Check each photo and copy the good ones into `images/<username>/` under the next free names.

    Photos identical to one the user already has are skipped with a reason, so running the
    same enrolment twice adds nothing.
    """
    problem = name_problem(username)
    if problem or username.startswith("."):
        raise EnrollError(f"cannot enrol {username!r}: {problem or 'a hidden name is ignored by the sync'}")
    if not sources:
        raise EnrollError("no photos given")
    check = check or default_checker()
    folder = images / username
    result = Enrolment(username, str(folder))
    existing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    known = {_digest((folder / n).read_bytes()) for n in existing if is_photo_name(n)}

    good: list[tuple[Path, bytes]] = []
    for path in sources:
        verdict = check(path)
        if verdict.status != ENCODED:
            result.rejected.append(Verdict(str(path), False, reason=verdict.reason or "rejected"))
            continue
        try:
            data = jpeg_bytes(path)
        except (OSError, ValueError) as exc:
            result.rejected.append(Verdict(str(path), False, reason=f"cannot convert to JPEG: {exc}"))
            continue
        digest = _digest(data)
        if digest in known:
            result.rejected.append(Verdict(str(path), False, reason="already enrolled (same content)"))
            continue
        known.add(digest)
        good.append((path, data))

    if good:
        folder.mkdir(parents=True, exist_ok=True)  # usual permissions: the sync may run as another user
    for (path, data), name in zip(good, next_names(existing, username, len(good)), strict=True):
        target = folder / name
        write_atomic(target, data, mode=0o644)
        result.accepted.append(Verdict(str(path), True, target=str(target)))
        log.info("enrolled %s as %s", path, target)
    return result


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
