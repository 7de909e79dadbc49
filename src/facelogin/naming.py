"""Usernames, photo names and the object keys derived from them (pure)."""

from __future__ import annotations

import unicodedata

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"})
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2")
# Image formats people's photos come in that facelogin does not decode: named in the reason.
UNSUPPORTED_FORMATS = {
    ".gif": "GIF",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".avif": "AVIF",
    ".jxl": "JPEG XL",
    ".psd": "Photoshop (PSD)",
    ".svg": "SVG",
    **{s: f"camera RAW ({s[1:].upper()})" for s in RAW_SUFFIXES},
}
SUPPORTED = "JPEG, PNG, WebP and HEIC"
MAX_NAME_LENGTH = 128


def suffix_of(name: str) -> str:
    """The lower-case suffix of a file name, as `PurePosixPath(name).suffix.lower()` gives it, faster."""
    i = name.rfind(".")
    return name[i:].lower() if 0 < i < len(name) - 1 else ""


def is_photo_name(name: str) -> bool:
    """True for a visible file with a photo suffix (case-insensitive)."""
    return not name.startswith(".") and suffix_of(name) in PHOTO_SUFFIXES


def format_problem(name: str) -> str | None:
    """Why a file called `name` is not a photo facelogin syncs, or None when its suffix is one it does."""
    suffix = suffix_of(name)
    if suffix in PHOTO_SUFFIXES:
        return None
    if suffix in UNSUPPORTED_FORMATS:
        return f"{UNSUPPORTED_FORMATS[suffix]} is not supported: save it as JPEG or PNG"
    kind = f"a {suffix} file" if suffix else "a file without a suffix"
    return f"not a photo ({kind}): only {SUPPORTED} photos are synced"


def name_problem(name: str, what: str = "username") -> str | None:
    """Why `name` cannot be a username or a path segment of an S3 key, or None when it can."""
    if not name or not name.strip():
        return f"empty {what}"
    if not is_utf8(name):  # bytes os.fsdecode kept as surrogates: no key or document can hold them
        return f"{what} {printable(name)!r} is not valid UTF-8: rename it"
    if len(name.encode()) > MAX_NAME_LENGTH:
        return f"{what} is longer than {MAX_NAME_LENGTH} bytes"
    if name in {".", ".."}:
        return f"{what} {name!r} is a relative path"
    if "/" in name or "\\" in name:
        return f"{what} {name!r} contains a path separator"
    plain = name.isascii() and name.isprintable()  # the usual case, without a look at each character
    if not plain and any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in name):
        return f"{what} {name!r} contains control characters"
    if name != name.strip():
        return f"{what} {name!r} starts or ends with white space"
    return None


def is_utf8(text: str) -> bool:
    """False for a name read from disk with bytes that are not UTF-8 (os.fsdecode's surrogate escapes)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """`text` with the bytes that are not UTF-8 shown as U+FFFD, so it can be printed, logged and stored."""
    if is_utf8(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def join_key(*parts: str) -> str:
    """Join key segments with '/', dropping empty ones (an empty prefix adds nothing)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def thumb_name(filename: str) -> str:
    """File name of a photo's thumbnails: its own name for a JPEG, else the name plus `.jpg`.

    Distinct names give distinct thumbnails (`face.jpg` and `face.png` no longer share one);
    the only clash left is a real `face.png.jpg` beside `face.png`, which the plan refuses.
    """
    return filename if suffix_of(filename) in JPEG_SUFFIXES else f"{filename}.jpg"


def thumb_key(prefix: str, size: int, username: str, filename: str) -> str:
    """Key of one thumbnail: <prefix>/<size>/<User>/<thumb_name(filename)>."""
    return join_key(prefix, str(size), username, thumb_name(filename))
