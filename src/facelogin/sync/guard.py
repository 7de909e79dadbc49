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
    folders = [e for e in entries if _is_kind(e, "dir")]
    if folders or allow_empty:
        return
    if any(_is_kind(e, "file") and is_photo_name(e.name) for e in entries):
        raise SyncRefused(
            f"{where} holds photos but no user folders: point it at the folder that holds one folder "
            "per user (images/<Username>/photo.jpg), not at one user's folder"
        )
    raise SyncRefused(
        f"{where} holds no user folders: if it is a network share, is it mounted? Nothing was changed. "
        "To remove every user on purpose, run with --prune."
    )


def _is_kind(entry: os.DirEntry[str], kind: str) -> bool:
    """Whether `entry` is a "dir" or "file", links followed; False for a link that leads nowhere (a
    loop, a broken link): discovery names it with its reason, the root is not refused for it."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


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


def check_remote(embedded_store: bool, embedded_catalog: bool, require_remote: bool,
                 from_deployment: bool, where: dict[str, str]) -> list[str]:  # fmt: skip
    """Warnings for a deployment's run on embedded defaults; a refusal when remote storage is required.

    A worker or serve process started without FACELOGIN_*/AWS_* in its environment would sync to
    a local directory and an embedded database in its own HOME and report success: the real bucket
    and database never hear of it. FACELOGIN_REQUIRE_REMOTE=1 (set in the systemd units) stops that.
    """
    local = []
    if embedded_store:
        local.append(
            f"thumbnails and the bundle go to the {where['store']} (no FACELOGIN_BUCKET or S3 block)"
        )
    if embedded_catalog:
        local.append(f"users go to the {where['catalog']} (no FACELOGIN_MONGODB_URI or Secret block)")
    if not local:
        return []
    if require_remote:
        raise SyncRefused(
            "FACELOGIN_REQUIRE_REMOTE is set but this run has embedded defaults: "
            + "; ".join(local)
            + ". Give the worker (or serve process) its settings, e.g. in /etc/facelogin/env: "
            "FACELOGIN_BUCKET and AWS_* (or FACELOGIN_S3_BLOCK), FACELOGIN_MONGODB_URI (or "
            "FACELOGIN_MONGODB_SECRET_BLOCK). Nothing was changed."
        )
    if not from_deployment:
        return []
    return [f"this deployment run uses embedded defaults on its machine: {item}" for item in local]
