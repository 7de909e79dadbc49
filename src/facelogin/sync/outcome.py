"""What came of a sync: this run's results merged with what was already recorded (pure).

`collect_outcome` merges the values the stages returned (sync/stages.py) with the unchanged
records, once, into one record per photo; from those come the MongoDB user documents, the
thumbnails to delete, the bundle's inputs and the run summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from facelogin.faces import ENCODED, REJECTED
from facelogin.sync.discover import KEPT, Discovery, Photo
from facelogin.sync.identity import IdentityCheck
from facelogin.sync.plan import IDENTITY, Plan, is_failure
from facelogin.sync.stages import Thumbnailed, Trained, Uploaded

Recorded = dict[str, dict[str, dict[str, Any]]]  # username -> filename -> photo record
StableUrl = Callable[[str], "str | None"]


class SyncError(RuntimeError):
    """The run finished what it could, but some photos could not be synced; or it stopped half-way
    (a store or database that went away). `summary` is what it did; `changed` is False when it
    stopped before writing anything."""

    def __init__(self, message: str, summary: dict[str, Any] | None, changed: bool = True) -> None:
        super().__init__(message)
        self.summary = summary
        self.changed = changed


def photo_record(
    photo: Photo,
    status: str,
    reason: str | None = None,
    thumbs: dict[str, str] | None = None,
    check: str | None = None,
) -> dict[str, Any]:
    record = {
        "filename": photo.filename,
        "sha256": photo.sha256,
        "bytes": photo.size,
        "status": status,
        "reason": reason,
        "thumbs": thumbs or {},
    }
    return record | {"check": check} if check else record


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
            "weak": sum(r["status"] == ENCODED and bool(r.get("reason")) for r in records),
        },
        # What `facelogin users` tells the person: each photo left out or weak, and why.
        "notes": [
            {"photo": r["filename"], "status": r["status"], "reason": r["reason"]}
            for r in records
            if r.get("reason")
        ],
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
    """Every current photo's record per user, and what was rejected (file + reason).

    `records` also holds what was kept as it was for folders and photos that could not be read,
    so their encodings stay in the bundle and their thumbnails are not stale; the users in
    `held_users` (whose folder could not be read at all) get no new document.
    """

    records: dict[str, list[dict[str, Any]]]
    rejected: list[dict[str, str]]
    held_users: frozenset[str] = frozenset()
    # What this run did, for the summary: contents encoded, photos uploaded (ref -> keys), errors
    # (photos tried again next run) and the identity checks' conflicts.
    new_encodings: frozenset[str] = frozenset()
    uploaded: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kept_shas(self) -> list[str]:
        """Encodings to keep stored: encoded photos, and those the identity checks left out this run
        (decided again next run, without encoding them again)."""
        return sorted(
            {r["sha256"] for recs in self.records.values() for r in recs
             if r["status"] == ENCODED or r.get("check") == IDENTITY}
        )  # fmt: skip

    @property
    def weak(self) -> list[dict[str, str]]:
        """Encoded photos that could be better (turned, blurred), each with how: "User/file" + reason."""
        return [
            {"file": f"{user}/{r['filename']}", "reason": r["reason"]}
            for user, recs in self.records.items()
            for r in recs
            if r["status"] == ENCODED and r.get("reason")
        ]

    @property
    def encoded_shas(self) -> list[str]:
        return sorted({r["sha256"] for recs in self.records.values() for r in recs if r["status"] == ENCODED})

    def documents(self, preferred: dict[str, str], stable_url: StableUrl) -> list[dict[str, Any]]:
        """One MongoDB document per user to write; `stable_url` gives the URL of a key that can be stored.

        No document for the users in `held_users`: their document stays as it is.
        """
        docs = self._documents(preferred, stable_url)
        return [doc for doc in docs if doc["username"] not in self.held_users]

    def _documents(self, preferred: dict[str, str], stable_url: StableUrl) -> list[dict[str, Any]]:
        return [
            user_document(
                user,
                recs,
                preferred.get(user),
                {k: stable_url(k) for r in recs for k in r["thumbs"].values()},
            )
            for user, recs in self.records.items()
        ]

    def stale_keys(self, recorded: Recorded) -> list[str]:
        """Thumbnail keys recorded before that no current photo uses: to delete from the store."""
        return stale_keys(recorded, self.records)

    def profiles(self, preferred: dict[str, str], stable_url: StableUrl) -> dict[str, dict[str, Any] | None]:
        """username -> profile image (photo, keys, stable URLs) as the user documents hold it."""
        return {doc["username"]: doc["profile_image"] for doc in self._documents(preferred, stable_url)}

    def bundle_inputs(self, profiles: dict[str, dict[str, Any] | None], model: dict[str, str]) -> str:
        """A digest of everything the bundle is built from: when it matches the published bundle's,
        the bundle would come out the same and nothing needs loading or publishing."""
        import hashlib
        import json

        encoded = {
            u: [r["sha256"] for r in recs if r["status"] == ENCODED] for u, recs in self.records.items()
        }
        body = json.dumps([encoded, profiles, model], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    def bundle_encodings(self, stored: dict[str, list[float]]) -> dict[str, list[list[float]]]:
        """username -> the encodings of their encoded photos, from `stored` (content hash -> encoding)."""
        return {
            user: [stored[r["sha256"]] for r in recs if r["status"] == ENCODED and r["sha256"] in stored]
            for user, recs in self.records.items()
        }


def collect_outcome(
    plan: Plan,
    users: dict[str, list[Photo]],
    recorded: Recorded,
    trained: Trained | None = None,
    thumbnailed: Thumbnailed | None = None,
    identity: IdentityCheck | None = None,
    uploaded: Uploaded | None = None,
) -> Outcome:
    """Merge unchanged and held records with what this run's stages returned, once.

    A stage not done (None: the run stopped before it) counts as having done nothing; a photo to
    process with no verdict yet keeps what was synced from it, if anything. A photo whose thumbnail
    could not be decoded is rejected, and so is its content. An encoded photo whose upload failed
    is recorded with no thumbnails, so the next run tries it again. A photo refused for a thumbnail
    key clash is recorded as rejected, with the reason naming the other photo. Records the plan holds
    (unreadable folders and photos) are carried over as they were, and so is the record of a photo
    this run failed to read (the plan tries it again next run). A photo the identity checks left
    out is recorded rejected, even one synced before.
    """
    trained = trained or Trained()
    thumbnailed = thumbnailed or Thumbnailed()
    uploaded = uploaded or Uploaded()
    verdicts = {**trained.verdicts, **{sha: (REJECTED, why) for sha, why in thumbnailed.undecodable.items()}}
    left_out = identity.rejected if identity is not None else {}
    records: dict[str, list[dict[str, Any]]] = {u: [] for u in users}
    rejected: list[dict[str, str]] = []

    def reject(photo: Photo, reason: str, check: str | None = None) -> None:
        records[photo.username].append(photo_record(photo, REJECTED, reason, check=check))
        rejected.append({"file": photo.path, "reason": reason})

    for user, held in plan.held.items():
        records.setdefault(user, []).extend(held)
    for photo in plan.unchanged:
        if photo.ref in left_out:
            reject(photo, left_out[photo.ref], IDENTITY)
        else:
            records[photo.username].append(recorded[photo.username][photo.filename])
    for photo, reason in plan.kept_rejected + plan.clashes:
        reject(photo, reason)
    for photo in plan.todo:
        before = recorded.get(photo.username, {}).get(photo.filename)
        if photo.sha256 not in verdicts:  # not trained yet: a run stopped half-way
            if before is not None:
                records[photo.username].append(before)
            continue
        status, why = verdicts[photo.sha256]
        if status == REJECTED and is_failure(why) and before is not None:
            records[photo.username].append(before)  # a read failure is no verdict: keep what was synced
            rejected.append({"file": photo.path, "reason": f"{why}: {KEPT}"})
        elif status == REJECTED:
            reject(photo, str(why))
        elif photo.ref in left_out:
            reject(photo, left_out[photo.ref], IDENTITY)
        else:  # `why` of an encoded photo: what makes it a weak one, if anything
            thumbs = dict(uploaded.thumbs.get(photo.ref, {}))
            records[photo.username].append(photo_record(photo, ENCODED, why, thumbs=thumbs))
    for recs in records.values():
        recs.sort(key=lambda r: r["filename"])
    return Outcome(
        dict(sorted(records.items())),
        rejected,
        frozenset(plan.held_users),
        new_encodings=frozenset(trained.encodings),
        uploaded=uploaded.thumbs,
        errors=[*thumbnailed.errors, *uploaded.errors],
        conflicts=identity.conflicts if identity is not None else [],
    )


def user_rows(
    outcome: Outcome, plan: Plan, encoded_shas: set[str], uploaded: Mapping[str, Mapping[str, str]]
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
                "weak": [
                    f"{r['filename']}: {r['reason']}"
                    for r in recs
                    if r["status"] == ENCODED and r.get("reason")
                ],
                "uploaded": sum(len(uploaded.get(p.ref, {})) for p in todo),
            }
        )
    return rows


class Summary(Mapping[str, Any]):
    """A run summary as the flow returns it: read like a dict, but not one.

    When a flow run ends, Prefect walks its return value for futures through every dict, list and
    dataclass: at 10,000 photos (a row per user, one per file left out) that costs ~0.5 s of a
    nightly run. A Mapping it leaves alone. `dict(summary)` is the plain dict (`--json` output).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Summary({self._data!r})"


def summarize(
    found: Discovery,
    plan: Plan,
    outcome: Outcome,
    *,
    upserted: int,
    removed_users: int,
    deleted_objects: int,
    store: str,
    bundle: dict[str, Any] | None,
    seconds: dict[str, float],
    where: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """The run summary: `--json` output, the report artifact's source and the flow's return value.

    `where` names what the run read and wrote, without credentials (Settings.where: the images
    root, the store, MongoDB's hosts and database); `warnings` are the run's own (embedded defaults).
    """
    where = where or {}
    rejected = [{"file": r.path, "reason": r.reason} for r in found.rejected] + outcome.rejected
    return {
        "users": len(found.users),
        "photos": len(found.photos),
        "encoded": len(outcome.new_encodings),
        "unchanged": len(plan.unchanged),
        "rejected": rejected,
        "weak": outcome.weak,
        "uploaded": sum(len(k) for k in outcome.uploaded.values()),
        "upserted": upserted,
        "removed_users": removed_users,
        "deleted_objects": deleted_objects,
        "errors": outcome.errors,
        "conflicts": outcome.conflicts,
        "bytes_read": found.bytes_read,
        "per_user": user_rows(outcome, plan, set(outcome.new_encodings), outcome.uploaded),
        "images": where.get("images", ""),
        "store": store,
        "catalog": where.get("catalog", ""),
        "bundle": bundle,
        "warnings": list(warnings or []),
        "seconds": seconds,
    }
