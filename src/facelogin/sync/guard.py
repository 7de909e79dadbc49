"""What a sync refuses to do on the strength of a likely mistake: it stops before changing anything.

A missing, empty or unmounted images root looks exactly like "everyone left", and a sync that
believed it would delete every user, their thumbnails and their encodings. So would a typo in
--images or a share that failed to mount. Removing many users at once must be confirmed.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from facelogin.naming import is_photo_name

# Stop when a run would remove more than this share of the known users (and more than one).
DEFAULT_REMOVAL_SHARE = 0.10


class SyncRefused(RuntimeError):
    """The run stopped before changing anything; the message says why and how to go on."""


def images_root_problem(root: Path, allow_empty: bool = False) -> tuple[str, str] | None:
    """What is wrong with `root` for a sync, in short (`does not exist`) and what to do; None if fine.

    `facelogin users` shows the short part, the sync refuses with both (check_images_root).
    """
    if not root.exists():
        return "does not exist", "check the path, and that the share is mounted"
    if not root.is_dir():
        return "is not a directory", ""
    try:
        entries = [e for e in os.scandir(root) if not e.name.startswith(".")]
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}", ""
    folders = [e for e in entries if _is_kind(e, "dir")]
    if folders or allow_empty:
        return None
    if any(_is_kind(e, "file") and is_photo_name(e.name) for e in entries):
        return (
            "holds photos but no user folders",
            "point it at the folder that holds one folder per user (images/<Username>/photo.jpg), "
            "not at one user's folder",
        )
    return (
        "holds no user folders",
        "if it is a network share, is it mounted? Nothing was changed. "
        "To remove every user on purpose, run with --prune.",
    )


def check_images_root(root: Path, allow_empty: bool = False) -> None:
    """Refuse an images root that is missing, not a folder, unreadable, empty or one user's folder."""
    problem = images_root_problem(root, allow_empty)
    if problem is not None:
        short, advice = problem
        where = f"images root {str(root)!r} (--images / FACELOGIN_IMAGES)"
        raise SyncRefused(f"{where} {short}" + (f": {advice}" if advice else ""))


def removed_users(
    recorded: Collection[str], users: Collection[str], unreadable_users: Collection[str] = ()
) -> list[str]:
    """Recorded users whose folder is gone (the plan removes them); a folder that is there but cannot
    be read is not gone."""
    return sorted(set(recorded) - set(users) - set(unreadable_users))


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


@dataclass
class Forecast:
    """What the next sync (without --allow-removals or --prune) would do with the recorded users."""

    stops: str | None = None  # the root's problem: the next sync stops before changing anything
    removed: list[str] = field(default_factory=list)  # users it would remove: their folders are gone
    kept: list[str] = field(default_factory=list)  # folders gone, but it would refuse to remove them
    refusal: str | None = None  # why it would refuse (check_removals' message)


def forecast(
    root: Path,
    users: Collection[str],
    unreadable_users: Collection[str],
    recorded: Collection[str],
    share: float = DEFAULT_REMOVAL_SHARE,
) -> Forecast:
    """The next sync's verdict on `root` and the `recorded` users, by the checks the sync makes.

    `users` and `unreadable_users` are the folders as discovery sees them (user_folders); a
    missing or empty root, or a removal above the safety share, stops the sync: nobody goes.
    """
    problem = images_root_problem(root)
    if problem is not None:
        return Forecast(stops=problem[0])
    gone = removed_users(recorded, users, unreadable_users)
    try:
        check_removals(len(recorded), gone, share=share)
    except SyncRefused as exc:
        return Forecast(kept=gone, refusal=str(exc))
    return Forecast(removed=gone)


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
