"""Where a profile image is shown from: the one rule, for the web page, the CLI and your own code.

Decided from the user's MongoDB document and the store, never built by hand from the username:
a fresh link from the key where the store's links expire (presigned mode), else the URL the sync
stored (base-url and public-acl modes; the store makes the same one for a document synced before
the mode changed); for a local store, the web app's own owner-only route, or the file itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def largest_key(profile: dict[str, Any] | None) -> str | None:
    """The store key of the largest profile thumbnail in a document's `profile_image`."""
    if not profile or not profile.get("keys"):
        return None
    keys = profile["keys"]
    return str(keys[max(keys, key=int)])


def profile_location(store: ObjectStore, profile: dict[str, Any] | None) -> str | None:
    """Where the largest profile thumbnail is kept (`s3://bucket/key`, a path), for listings."""
    key = largest_key(profile)
    return f"{store.location}/{key}" if key else None


def profile_image(
    doc: dict[str, Any],
    store: ObjectStore,
    wanted: int | None,
    local_url: Callable[[int], str] | None = None,
) -> ProfileImage | None:
    """The image to show for the user document `doc`, or None when it has none (no encoded photo).

    `local_url(size)`: how a web app serves a local store's thumbnail (a browser cannot open the
    file); without it, a local store's answer is the file's own URL.
    """
    profile = doc.get("profile_image") or {}
    keys: dict[str, str] = profile.get("keys") or {}
    if not keys:
        return None
    size = choose_size([int(s) for s in keys], wanted)
    key = keys[str(size)]
    photo = profile.get("photo")
    if not store.remote:
        url = local_url(size) if local_url is not None else store.url_for(key)
        return ProfileImage(url, size, key, photo, None) if url else None
    if expires := store.expires_in():
        url = store.url_for(key)
        return ProfileImage(url, size, key, photo, expires) if url else None
    stored = (profile.get("urls") or {}).get(str(size))
    url = stored or store.url_for(key)
    return ProfileImage(url, size, key, photo, None) if url else None
