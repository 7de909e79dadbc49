"""Where a profile image is shown from, decided at request time from the user's MongoDB document.

Never a URL built by hand from the username: a fresh presigned URL from the key (presigned mode),
the URL the sync stored (base-url and public-acl modes), or, for the local store of the embedded
defaults, the web app's own owner-only route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facelogin.adapters.stores import ObjectStore

DEFAULT_SIZE = 256


@dataclass(frozen=True)
class ProfileImage:
    url: str
    size: int
    key: str
    photo: str | None
    expires_in: int | None  # seconds, for a presigned URL


def choose_size(sizes: list[int], wanted: int | None) -> int:
    """`wanted` when synced, else the smallest synced size above it, else the largest."""
    ordered = sorted(sizes)
    wanted = DEFAULT_SIZE if wanted is None else wanted
    if wanted in ordered:
        return wanted
    return next((s for s in ordered if s > wanted), ordered[-1])


def profile_image(
    doc: dict[str, Any], store: ObjectStore, wanted: int | None, local_url: Callable[[int], str]
) -> ProfileImage | None:
    """The image to show for the user document `doc`, or None when it has none (no encoded photo)."""
    profile = doc.get("profile_image") or {}
    keys: dict[str, str] = profile.get("keys") or {}
    if not keys:
        return None
    size = choose_size([int(s) for s in keys], wanted)
    key = keys[str(size)]
    photo = profile.get("photo")
    if not store.remote:
        return ProfileImage(local_url(size), size, key, photo, None)
    if expires := store.expires_in():
        url = store.url_for(key)
        assert url is not None
        return ProfileImage(url, size, key, photo, expires)
    stored = (profile.get("urls") or {}).get(str(size))
    # A document synced before the mode changed holds no URL: the store makes the same stable one.
    url = stored or store.url_for(key)
    return ProfileImage(url, size, key, photo, None) if url else None
