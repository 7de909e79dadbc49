"""Enrol a person: check their photos and copy them into images/<Username>/ as <username>_NN.jpg.

Each photo must be readable and show exactly one face (the same check the sync makes), so a
bad photo is turned away at the desk with its reason instead of showing up in the nightly report.
The new photos are then checked as identities (facelogin.sync.identity) together with everyone
already enrolled (the published bundle, when there is one): a photo of someone else, or of two
people, is rejected with the reason; a face already enrolled under another name refuses the whole
enrolment (nothing is copied) unless forced.
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
from typing import TYPE_CHECKING, Any

from facelogin.faces import ENCODED, FaceResult
from facelogin.files import write_atomic
from facelogin.naming import SUPPORTED, is_photo_name, name_problem
from facelogin.sync.identity import SAME_FACE, Candidate, check_identities, enrolled_candidates

if TYPE_CHECKING:
    from facelogin.bundle import Bundle

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
    weak: str | None = None  # an accepted photo that could be better, and how (faces.weak_reason)


@dataclass
class Enrolment:
    username: str
    folder: str
    accepted: list[Verdict] = field(default_factory=list)
    rejected: list[Verdict] = field(default_factory=list)
    # Users whose faces collide with this one (facelogin.sync.identity's conflict records).
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    refused: str | None = None  # why nothing was copied although some photos were good

    def as_dict(self) -> dict[str, object]:
        return {
            "username": self.username,
            "folder": self.folder,
            "accepted": [asdict(v) for v in self.accepted],
            "rejected": [asdict(v) for v in self.rejected],
            "conflicts": self.conflicts,
            "refused": self.refused,
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
        raise EnrollError(f"no photos ({SUPPORTED}) in {source}")
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


def enroll(
    username: str,
    sources: list[Path],
    images: Path,
    check: Checker | None = None,
    enrolled: Bundle | None = None,
    force: bool = False,
) -> Enrolment:
    """Check each photo and copy the good ones into `images/<username>/` under the next free names.

    Photos identical to one the user already has are skipped with a reason, so running the
    same enrolment twice adds nothing. The photos that pass are checked as identities against
    each other and `enrolled`; when one shows a face enrolled under another name nothing is
    copied (`refused` says why) unless `force`, which enrols them and still reports the conflict.
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
    known = {_digest(data) for n in existing if is_photo_name(n) and (data := _read_regular(folder / n))}

    good: list[tuple[Path, bytes, Candidate]] = []
    weak: dict[Path, str | None] = {}
    for path in sources:
        verdict = check(path)
        if verdict.status != ENCODED or verdict.encoding is None:
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
        weak[path] = verdict.weak
        ref = _unique(f"{username}/{path.name}", {c.ref for _, _, c in good})
        good.append((path, data, Candidate(ref, username, digest, verdict.encoding)))

    good = _check_identities(result, good, enrolled, force)
    if good:
        folder.mkdir(parents=True, exist_ok=True)  # usual permissions: the sync may run as another user
    for (path, data, _), name in zip(good, next_names(existing, username, len(good)), strict=True):
        target = folder / name
        write_atomic(target, data, mode=0o644)
        result.accepted.append(Verdict(str(path), True, target=str(target), weak=weak.get(path)))
        log.info("enrolled %s as %s", path, target)
    return result


def _check_identities(
    result: Enrolment, good: list[tuple[Path, bytes, Candidate]], enrolled: Bundle | None, force: bool
) -> list[tuple[Path, bytes, Candidate]]:
    """The photos still to copy after the identity checks; the others go to `result.rejected`."""
    if not good:
        return []
    others = (
        enrolled_candidates(enrolled.encodings, enrolled.labels, enrolled.usernames)
        if enrolled is not None
        else []
    )
    checked = check_identities(others + [c for _, _, c in good])
    new = {c.ref for _, _, c in good}
    result.conflicts = [
        c
        for c in checked.conflicts
        if result.username in c["users"] and (set(c["rejected"]) & new or not c["rejected"])
    ]
    # A face enrolled under another name: the one refusal that --force overrides.
    overridable = {r for c in result.conflicts if c["kind"] == SAME_FACE for r in c["rejected"]}
    if force:
        result.conflicts = [
            {**c, "kept": None, "rejected": [], "forced": True}
            if c["kind"] == SAME_FACE and c["rejected"]
            else c
            for c in result.conflicts
        ]
    if overridable and not force:
        others_named = sorted(
            {u for c in result.conflicts if c["rejected"] for u in c["users"]} - {result.username}
        )
        result.refused = (
            f"{result.username}'s face is already enrolled as {', '.join(others_named)}: nothing copied "
            "(use --force to enrol anyway)"
        )
    keep = []
    for path, data, candidate in good:
        reason = checked.rejected.get(candidate.ref)
        if reason is not None and not (force and candidate.ref in overridable):
            result.rejected.append(Verdict(str(path), False, reason=reason))
        elif result.refused:
            result.rejected.append(Verdict(str(path), False, reason="not copied: the enrolment was refused"))
        else:
            keep.append((path, data, candidate))
    return keep


def _unique(ref: str, taken: set[str]) -> str:
    """`ref`, or `ref` with a number added when another source photo has the same name."""
    n, out = 1, ref
    while out in taken:
        n += 1
        out = f"{ref} ({n})"
    return out


def _read_regular(path: Path) -> bytes | None:
    """The bytes of a regular file; None for anything else (a FIFO would block) or an unreadable one."""
    from facelogin.imaging import PhotoError, open_regular

    try:
        with open_regular(path) as fh:
            return fh.read()
    except (OSError, PhotoError):
        return None


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
