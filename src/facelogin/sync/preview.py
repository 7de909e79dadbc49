"""`facelogin sync --dry-run`: what a run would do, from the plan, with nothing changed anywhere."""

from __future__ import annotations

from typing import Any

from facelogin.sync.discover import Discovery
from facelogin.sync.outcome import Recorded, stale_keys
from facelogin.sync.plan import Plan, expected_thumbs


def preview(
    found: Discovery, recorded: Recorded, plan: Plan, sizes: list[int], prefix: str, cached: set[str]
) -> dict[str, Any]:
    """Users added and removed, photos to encode, objects to upload (at most) and to delete."""
    current = {
        user: [{"thumbs": expected_thumbs(p, sizes, prefix)} for p in photos]
        for user, photos in found.users.items()
    }
    return {
        "users_added": sorted(set(found.users) - set(recorded)),
        "users_removed": plan.removed_users,
        "photos_to_encode": len({p.sha256 for p in plan.todo} - cached),
        "photos_to_process": len(plan.todo),
        "photos_unchanged": len(plan.unchanged),
        "objects_to_upload": sum(len(sizes) for _ in plan.todo),
        "objects_to_delete": len(stale_keys(recorded, current)),
    }
