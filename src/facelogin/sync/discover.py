"""Find the users and photos under an images root, with a reason for everything left out."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from facelogin.naming import is_photo_name, name_problem

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Photo:
    """One enrolment photo, identified by its content hash."""

    username: str
    filename: str
    path: str
    sha256: str
    size: int

    @property
    def ref(self) -> str:
        return f"{self.username}/{self.filename}"


@dataclass(frozen=True)
class Rejection:
    """A file or folder that is not synced, and why."""

    path: str
    reason: str


@dataclass
class Discovery:
    users: dict[str, list[Photo]] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def photos(self) -> list[Photo]:
        return [p for photos in self.users.values() for p in photos]


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def discover_photos(root: Path) -> Discovery:
    """Every user folder directly under `root` and its photos, sorted by name.

    Hidden entries are skipped silently; unsafe names, links that leave the root and
    unreadable files are rejected with a reason. A user folder with no photo is still a
    user (with no photos), so that removing the last photo removes it everywhere.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"images root {str(root)!r} is not a directory")
    real_root = root.resolve()
    found = Discovery()
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if not _inside(entry, real_root):
            found.rejected.append(Rejection(str(entry), "symbolic link leaves the images root"))
            continue
        if not entry.is_dir():
            if is_photo_name(entry.name):
                found.rejected.append(
                    Rejection(str(entry), "photo directly under the images root: put it in a user folder")
                )
            continue
        if problem := name_problem(entry.name):
            found.rejected.append(Rejection(str(entry), problem))
            continue
        found.users[entry.name] = _user_photos(entry, real_root, found.rejected)
    return found


def _user_photos(folder: Path, real_root: Path, rejected: list[Rejection]) -> list[Photo]:
    photos = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not is_photo_name(path.name):
            continue
        if path.is_symlink() and not path.exists():
            rejected.append(Rejection(str(path), "broken symbolic link"))
            continue
        if not _inside(path, real_root):
            rejected.append(Rejection(str(path), "symbolic link leaves the images root"))
            continue
        if problem := name_problem(path.name, "file name"):
            rejected.append(Rejection(str(path), problem))
            continue
        try:
            if not path.is_file():
                continue
            size = path.stat().st_size
            digest = hash_file(path)
        except OSError as exc:
            rejected.append(Rejection(str(path), f"unreadable: {exc.strerror or exc}"))
            continue
        photos.append(Photo(folder.name, path.name, os.fspath(path), digest, size))
    return photos
