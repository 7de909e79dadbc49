"""What a sync has to do, decided from the photos on disk and what the catalog recorded (pure)."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from facelogin.faces import ENCODED, REJECTED
from facelogin.imaging import CANNOT_READ
from facelogin.naming import thumb_key, thumb_name
from facelogin.sync.discover import Discovery, Photo
from facelogin.sync.guard import removed_users

# Reason prefixes of rejections that were failures, not verdicts: `encoding failed` is how the
# encode stage names a batch whose worker failed outright.
RETRIED = (CANNOT_READ, "encoding failed")
# `check` of a photo record rejected by the identity checks (facelogin.sync.identity).
IDENTITY = "identity"


def expected_thumbs(photo: Photo, sizes: list[int], prefix: str) -> dict[str, str]:
    """size (as a string: MongoDB keys) -> object key of that thumbnail."""
    return {str(s): thumb_key(prefix, s, photo.username, photo.filename) for s in sizes}


@dataclass
class Plan:
    """What the sync does with each photo, and with what was recorded for photos it cannot see."""

    todo: list[Photo] = field(default_factory=list)
    unchanged: list[Photo] = field(default_factory=list)
    kept_rejected: list[tuple[Photo, str]] = field(default_factory=list)
    removed_users: list[str] = field(default_factory=list)
    # Photos refused because another photo of the folder owns their thumbnail key (reason names it).
    clashes: list[tuple[Photo, str]] = field(default_factory=list)
    # username -> recorded photo records kept as they were, because the photo (or the whole
    # folder) is there but could not be read; their thumbnails and encodings stay.
    held: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Users whose folder could not be read at all: their catalog document is left untouched.
    held_users: list[str] = field(default_factory=list)


def plan_sync(
    users: dict[str, list[Photo]],
    recorded: dict[str, dict[str, dict[str, Any]]],
    sizes: list[int],
    prefix: str,
    full: bool = False,
    *,
    unreadable_users: Collection[str] = (),
    unreadable_photos: Collection[str] = (),
) -> Plan:
    """Split photos into those to (re)process and those already done for this exact content.

    A photo is done when the catalog holds its sha256 with status encoded and the thumbnail
    keys this configuration asks for, or with status rejected (same bytes, same verdict) unless
    the rejection was a failure to read or encode it. Thumbnails are redone when their recorded
    keys differ (a new naming rule: the old keys become stale) or when another recorded photo
    shares one of them (one overwrote the other). A photo whose thumbnail key another photo of
    its folder owns is refused (`clashes`).

    `unreadable_users` and `unreadable_photos` (photo refs) come from the discovery: what was
    recorded for them is held as it was, never removed on the strength of a read error.
    """
    plan = Plan(removed_users=removed_users(recorded, users, unreadable_users))
    for username in sorted(set(unreadable_users) & set(recorded) - set(users)):
        plan.held_users.append(username)
        plan.held[username] = [recorded[username][name] for name in sorted(recorded[username])]
    for username, photos in users.items():
        seen = recorded.get(username, {})
        wanted = {p.filename: expected_thumbs(p, sizes, prefix) for p in photos}
        taken = _owners(photos, wanted, plan.clashes)
        on_disk = set(wanted)
        for name in sorted(seen):
            if f"{username}/{name}" in unreadable_photos and name not in on_disk:
                kept = seen[name]
                if set(_keys(kept)) & set(taken):  # a current photo's thumbnail goes there now
                    kept = {**kept, "thumbs": {}}
                plan.held.setdefault(username, []).append(kept)
        shared = _shared_keys(seen.values())
        clashing = {photo.filename for photo, _ in plan.clashes if photo.username == username}
        for photo in photos:
            if photo.filename in clashing:
                continue
            rec = seen.get(photo.filename)
            if rec is not None and not full and rec.get("sha256") == photo.sha256:
                status, thumbs = rec.get("status"), rec.get("thumbs")
                if status == ENCODED and thumbs == wanted[photo.filename] and not set(_keys(rec)) & shared:
                    plan.unchanged.append(photo)
                    continue
                # An identity rejection depends on everyone's photos: it is decided again each run.
                if status == REJECTED and not is_failure(rec.get("reason")) and rec.get("check") != IDENTITY:
                    plan.kept_rejected.append((photo, str(rec.get("reason") or "rejected")))
                    continue
            plan.todo.append(photo)
    return plan


def is_failure(reason: str | None) -> bool:
    """Whether a rejection says nothing about the photo (it could not be read, its worker died)."""
    return str(reason or "").startswith(RETRIED)


def _keys(record: dict[str, Any]) -> list[str]:
    return list((record.get("thumbs") or {}).values())


def _shared_keys(records: Iterable[dict[str, Any]]) -> set[str]:
    """Thumbnail keys recorded for more than one photo: whichever was uploaded last is in the store."""
    seen: set[str] = set()
    shared: set[str] = set()
    for rec in records:
        for key in set(_keys(rec)):
            (shared if key in seen else seen).add(key)
    return shared


def _owners(
    photos: list[Photo], wanted: dict[str, dict[str, str]], clashes: list[tuple[Photo, str]]
) -> dict[str, str]:
    """Thumbnail key -> the photo that gets it; a photo whose key is taken goes to `clashes`.

    A JPEG keeps its own name as its thumbnail's name, so it owns that key before any photo
    whose name had `.jpg` added (`x.png.jpg` wins over `x.png`), whatever came first.
    """
    owner: dict[str, str] = {}
    for photo in sorted(photos, key=lambda p: (thumb_name(p.filename) != p.filename, p.filename)):
        keys = list(wanted[photo.filename].values())
        other = next((owner[k] for k in keys if k in owner), None)
        if other is not None:
            name = thumb_name(photo.filename)
            reason = f"its thumbnail would overwrite that of {other} (both named {name})"
            clashes.append((photo, f"{reason}: rename one of the two"))
            continue
        owner.update(dict.fromkeys(keys, photo.filename))
    return owner


def batches(photos: list[Photo], workers: int, most: int = 8, per_worker: int = 3) -> list[list[Photo]]:
    """At least `per_worker` batches per worker (when there are photos enough), of at most `most` photos."""
    size = max(1, min(most, math.ceil(len(photos) / (workers * per_worker))))
    return [photos[i : i + size] for i in range(0, len(photos), size)]


def batch_label(batch: list[Photo]) -> str:
    """`Obama/obama_01.jpg`, or `Obama/obama_01.jpg+3` for a batch of four: names a task run."""
    return batch[0].ref if len(batch) == 1 else f"{batch[0].ref}+{len(batch) - 1}"


def plan_for(found: Discovery, recorded: dict[str, dict[str, dict[str, Any]]], sizes: list[int], prefix: str,
             full: bool = False) -> Plan:  # fmt: skip
    """`plan_sync` for what discovery found, holding what it could not read as it was."""
    return plan_sync(found.users, recorded, sizes, prefix, full, unreadable_users=found.unreadable_users,
                     unreadable_photos=found.unreadable_photos)  # fmt: skip
