"""What a sync has to do, decided from the photos on disk and what the catalog recorded (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facelogin.discover import Photo
from facelogin.faces import ENCODED, REJECTED
from facelogin.naming import thumb_key


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


def photo_record(
    photo: Photo, status: str, reason: str | None = None, thumbs: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "filename": photo.filename,
        "sha256": photo.sha256,
        "bytes": photo.size,
        "status": status,
        "reason": reason,
        "thumbs": thumbs or {},
    }


def choose_profile(records: list[dict[str, Any]], preferred: str | None) -> dict[str, Any] | None:
    """The configured photo when it is usable, else the first encoded photo in name order."""
    usable = sorted(
        (r for r in records if r["status"] == ENCODED and r["thumbs"]), key=lambda r: r["filename"]
    )
    for rec in usable:
        if rec["filename"] == preferred:
            return rec
    return usable[0] if usable else None


def user_document(
    username: str,
    records: list[dict[str, Any]],
    preferred: str | None,
    stable_urls: dict[str, str | None],
) -> dict[str, Any]:
    """The user's MongoDB document: profile image keys (and URLs when they do not expire), every photo."""
    records = sorted(records, key=lambda r: r["filename"])
    profile = choose_profile(records, preferred)
    profile_image = None
    if profile is not None:
        urls = {size: stable_urls.get(key) for size, key in profile["thumbs"].items()}
        profile_image = {
            "photo": profile["filename"],
            "keys": profile["thumbs"],
            "urls": urls if all(urls.values()) else None,
        }
    return {
        "username": username,
        "profile_image": profile_image,
        "photos": records,
        "counts": {
            "photos": len(records),
            "encoded": sum(r["status"] == ENCODED for r in records),
            "rejected": sum(r["status"] == REJECTED for r in records),
        },
    }


def stale_keys(
    before: dict[str, dict[str, dict[str, Any]]], after: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """Thumbnail keys recorded before that no current photo uses: to delete from the store."""
    old = {
        k for photos in before.values() for rec in photos.values() for k in (rec.get("thumbs") or {}).values()
    }
    new = {k for recs in after.values() for rec in recs for k in rec["thumbs"].values()}
    return sorted(old - new)


@dataclass
class Outcome:
    """Every current photo's record per user, and what was rejected (file + reason)."""

    records: dict[str, list[dict[str, Any]]]
    rejected: list[dict[str, str]]

    @property
    def encoded_shas(self) -> list[str]:
        return sorted({r["sha256"] for recs in self.records.values() for r in recs if r["status"] == ENCODED})


def collect_outcome(
    users: dict[str, list[Photo]],
    plan: Plan,
    recorded: dict[str, dict[str, dict[str, Any]]],
    verdicts: dict[str, tuple[str, str | None]],
    uploaded: dict[str, dict[str, str]],
) -> Outcome:
    """Merge unchanged records with this run's results.

    `verdicts` maps a content hash to (status, reason); `uploaded` maps a photo ref to the
    thumbnail keys now in the store. An encoded photo whose upload failed is recorded with
    no thumbnails, so the next run tries it again.
    """
    records: dict[str, list[dict[str, Any]]] = {u: [] for u in users}
    rejected: list[dict[str, str]] = []
    for photo in plan.unchanged:
        records[photo.username].append(recorded[photo.username][photo.filename])
    for photo, reason in plan.kept_rejected:
        records[photo.username].append(photo_record(photo, REJECTED, reason))
        rejected.append({"file": photo.path, "reason": reason})
    for photo in plan.todo:
        status, why = verdicts[photo.sha256]
        if status == REJECTED:
            records[photo.username].append(photo_record(photo, REJECTED, why))
            rejected.append({"file": photo.path, "reason": str(why)})
        else:
            records[photo.username].append(photo_record(photo, ENCODED, thumbs=uploaded.get(photo.ref, {})))
    for recs in records.values():
        recs.sort(key=lambda r: r["filename"])
    return Outcome(records, rejected)


def user_rows(
    outcome: Outcome, plan: Plan, encoded_shas: set[str], uploaded: dict[str, dict[str, str]]
) -> list[dict[str, Any]]:
    """One row per user for the run report: what this run did and what is rejected, with reasons."""
    unchanged: dict[str, int] = {}
    for photo in plan.unchanged:
        unchanged[photo.username] = unchanged.get(photo.username, 0) + 1
    rows = []
    for user, recs in sorted(outcome.records.items()):
        todo = [p for p in plan.todo if p.username == user]
        rejected = [r for r in recs if r["status"] == REJECTED]
        rows.append(
            {
                "user": user,
                "photos": len(recs),
                "encoded": sum(p.sha256 in encoded_shas for p in todo),
                "unchanged": unchanged.get(user, 0),
                "rejected": len(rejected),
                "reasons": [f"{r['filename']}: {r['reason']}" for r in rejected],
                "uploaded": sum(len(uploaded.get(p.ref, {})) for p in todo),
            }
        )
    return rows
