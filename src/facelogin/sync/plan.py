"""What a sync has to do, decided from the photos on disk and what the catalog recorded (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from facelogin.faces import ENCODED, REJECTED
from facelogin.naming import thumb_key
from facelogin.sync.discover import Photo


def expected_thumbs(photo: Photo, sizes: list[int], prefix: str) -> dict[str, str]:
    """size (as a string: MongoDB keys) -> object key of that thumbnail."""
    return {str(s): thumb_key(prefix, s, photo.username, photo.filename) for s in sizes}


@dataclass
class Plan:
    todo: list[Photo] = field(default_factory=list)
    unchanged: list[Photo] = field(default_factory=list)
    kept_rejected: list[tuple[Photo, str]] = field(default_factory=list)
    removed_users: list[str] = field(default_factory=list)


def plan_sync(
    users: dict[str, list[Photo]],
    recorded: dict[str, dict[str, dict[str, Any]]],
    sizes: list[int],
    prefix: str,
    full: bool = False,
) -> Plan:
    """Split photos into those to (re)process and those already done for this exact content.

    A photo is done when the catalog holds its sha256 with status encoded and the thumbnail
    keys this configuration asks for, or with status rejected (same bytes, same verdict).
    """
    plan = Plan(removed_users=sorted(set(recorded) - set(users)))
    for username, photos in users.items():
        seen = recorded.get(username, {})
        for photo in photos:
            rec = seen.get(photo.filename)
            same = not full and rec is not None and rec.get("sha256") == photo.sha256
            if same and rec is not None and rec.get("status") == ENCODED:
                if rec.get("thumbs") == expected_thumbs(photo, sizes, prefix):
                    plan.unchanged.append(photo)
                    continue
            elif same and rec is not None and rec.get("status") == REJECTED:
                plan.kept_rejected.append((photo, str(rec.get("reason") or "rejected")))
                continue
            plan.todo.append(photo)
    return plan


def batches(photos: list[Photo], workers: int) -> list[list[Photo]]:
    """Batches small enough to keep every worker busy, large enough to amortise task overhead."""
    size = max(1, min(8, math.ceil(len(photos) / (workers * 3))))
    return [photos[i : i + size] for i in range(0, len(photos), size)]


def batch_label(batch: list[Photo]) -> str:
    """`Obama/obama_01.jpg`, or `Obama/obama_01.jpg+3` for a batch of four: names a task run."""
    return batch[0].ref if len(batch) == 1 else f"{batch[0].ref}+{len(batch) - 1}"
