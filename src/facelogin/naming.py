"""Usernames, photo names and the object keys derived from them (pure)."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_NAME_LENGTH = 128


def is_photo_name(name: str) -> bool:
    """True for a visible file with a photo suffix (case-insensitive)."""
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in PHOTO_SUFFIXES


def name_problem(name: str, what: str = "username") -> str | None:
    """Why `name` cannot be a username or a path segment of an S3 key, or None when it can."""
    if not name or not name.strip():
        return f"empty {what}"
    if len(name.encode()) > MAX_NAME_LENGTH:
        return f"{what} is longer than {MAX_NAME_LENGTH} bytes"
    if name in {".", ".."}:
        return f"{what} {name!r} is a relative path"
    if "/" in name or "\\" in name:
        return f"{what} {name!r} contains a path separator"
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in name):
        return f"{what} {name!r} contains control characters"
    if name != name.strip():
        return f"{what} {name!r} starts or ends with white space"
    return None


def join_key(*parts: str) -> str:
    """Join key segments with '/', dropping empty ones (an empty prefix adds nothing)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def thumb_key(prefix: str, size: int, username: str, filename: str) -> str:
    """Key of one thumbnail: <prefix>/<size>/<User>/<stem>.jpg, keeping the original layout."""
    stem = PurePosixPath(filename).stem
    return join_key(prefix, str(size), username, f"{stem}.jpg")
