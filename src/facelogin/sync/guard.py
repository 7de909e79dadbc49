"""What a sync refuses to do on the strength of a likely mistake: it stops before changing anything.

A missing, empty or unmounted images root looks exactly like "everyone left", and a sync that
believed it would delete every user, their thumbnails and their encodings. So would a typo in
--images or a share that failed to mount. Removing many users at once must be confirmed.
"""

from __future__ import annotations

import os
from pathlib import Path

from facelogin.naming import is_photo_name

# Stop when a run would remove more than this share of the known users (and more than one).
DEFAULT_REMOVAL_SHARE = 0.10


class SyncRefused(RuntimeError):
    """The run stopped before changing anything; the message says why and how to go on."""


def check_images_root(root: Path, allow_empty: bool = False) -> None:
    """Refuse an images root that is missing, not a folder, unreadable, empty or one user's folder."""
    where = f"images root {str(root)!r} (--images / FACELOGIN_IMAGES)"
    if not root.exists():
        raise SyncRefused(f"{where} does not exist: check the path, and that the share is mounted")
    if not root.is_dir():
        raise SyncRefused(f"{where} is not a directory")
    try:
        entries = [e for e in os.scandir(root) if not e.name.startswith(".")]
    except OSError as exc:
        raise SyncRefused(f"{where} cannot be read: {exc.strerror or exc}") from None
    folders = [e for e in entries if e.is_dir()]
    if folders or allow_empty:
        return
    if any(e.is_file() and is_photo_name(e.name) for e in entries):
        raise SyncRefused(
            f"{where} holds photos but no user folders: point it at the folder that holds one folder "
            "per user (images/<Username>/photo.jpg), not at one user's folder"
        )
    raise SyncRefused(
        f"{where} holds no user folders: if it is a network share, is it mounted? Nothing was changed. "
        "To remove every user on purpose, run with --prune."
    )


def check_removals(known: int, removed: list[str], allow: int = 0, prune: bool = False,
                   share: float = DEFAULT_REMOVAL_SHARE) -> None:  # fmt: skip
    """Refuse removing more than one user and more than `share` of the `known` ones, unless confirmed."""
    count = len(removed)
    if prune or count <= allow or count <= 1 or count <= share * known:
        return
    names = ", ".join(removed[:10]) + (f" and {count - 10} more" if count > 10 else "")
    raise SyncRefused(
        f"this run would remove {count} of {known} users ({names}) because their folders are gone; "
        f"nothing was changed. If they really left, confirm with `facelogin sync --allow-removals {count}` "
        "(or --prune for any number); otherwise check that the images root is the right, mounted folder."
    )
