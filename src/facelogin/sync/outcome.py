"""What came of a sync: this run's results merged with what was already recorded (pure).

`RunResults` collects what the stages return as they finish (encodings, staged thumbnails,
uploads, errors); `collect_outcome` merges that with the unchanged records into one record per
photo; from those come the MongoDB user documents, the thumbnails to delete, the bundle's
inputs and the run summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from facelogin.faces import ENCODED, REJECTED, FaceResult
from facelogin.sync.discover import KEPT, Discovery, Photo
from facelogin.sync.identity import Candidate, IdentityCheck
from facelogin.sync.plan import IDENTITY, Plan, expected_thumbs, is_failure

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
    users: dict[str, list[Photo]],
    plan: Plan,
    recorded: dict[str, dict[str, dict[str, Any]]],
    verdicts: dict[str, tuple[str, str | None]],
    uploaded: dict[str, dict[str, str]],
    identity: dict[str, str] | None = None,
) -> Outcome:
    """Merge unchanged and held records with this run's results.

    `verdicts` maps a content hash to (status, reason); `uploaded` maps a photo ref to the
    thumbnail keys now in the store. An encoded photo whose upload failed is recorded with
    no thumbnails, so the next run tries it again. A photo refused for a thumbnail key clash
    is recorded as rejected, with the reason naming the other photo. Records the plan holds
    (unreadable folders and photos) are carried over as they were, and so is the record of a
    photo this run failed to read (the plan tries it again next run). `identity` maps the ref of a
    photo the identity checks left out to why: it is recorded rejected, even one synced before.
    """
    identity = identity or {}
    records: dict[str, list[dict[str, Any]]] = {u: [] for u in users}
    rejected: list[dict[str, str]] = []
    for user, held in plan.held.items():
        records.setdefault(user, []).extend(held)
    for photo in plan.unchanged:
        if photo.ref in identity:
            records[photo.username].append(photo_record(photo, REJECTED, identity[photo.ref], check=IDENTITY))
            rejected.append({"file": photo.path, "reason": identity[photo.ref]})
            continue
        records[photo.username].append(recorded[photo.username][photo.filename])
    for photo, reason in plan.kept_rejected + plan.clashes:
        records[photo.username].append(photo_record(photo, REJECTED, reason))
        rejected.append({"file": photo.path, "reason": reason})
    for photo in plan.todo:
        status, why = verdicts[photo.sha256]
        before = recorded.get(photo.username, {}).get(photo.filename)
        if status == REJECTED and is_failure(why) and before is not None:
            records[photo.username].append(before)  # a read failure is no verdict: keep what was synced
            rejected.append({"file": photo.path, "reason": f"{why}: {KEPT}"})
        elif status == REJECTED:
            records[photo.username].append(photo_record(photo, REJECTED, why))
            rejected.append({"file": photo.path, "reason": str(why)})
        elif photo.ref in identity:
            records[photo.username].append(photo_record(photo, REJECTED, identity[photo.ref], check=IDENTITY))
            rejected.append({"file": photo.path, "reason": identity[photo.ref]})
        else:  # `why` of an encoded photo: what makes it a weak one, if anything
            records[photo.username].append(
                photo_record(photo, ENCODED, why, thumbs=uploaded.get(photo.ref, {}))
            )
    for recs in records.values():
        recs.sort(key=lambda r: r["filename"])
    return Outcome(dict(sorted(records.items())), rejected, frozenset(plan.held_users))


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
                "weak": [
                    f"{r['filename']}: {r['reason']}"
                    for r in recs
                    if r["status"] == ENCODED and r.get("reason")
                ],
                "uploaded": sum(len(uploaded.get(p.ref, {})) for p in todo),
            }
        )
    return rows


@dataclass
class RunResults:
    """What this run's stages returned, merged as they finish; decides what the next stage gets."""

    plan: Plan
    thumbs: dict[str, dict[str, str]]  # photo ref -> size -> object key, for every photo to process
    verdicts: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # sha256 -> (status, reason)
    new_encodings: dict[str, list[float]] = field(default_factory=dict)
    staged: dict[str, list[Photo]] = field(default_factory=dict)
    uploaded: dict[str, dict[str, str]] = field(default_factory=dict)  # photo ref -> keys now in the store
    errors: list[dict[str, str]] = field(default_factory=list)
    identity: dict[str, str] = field(default_factory=dict)  # photo ref -> why the identity checks left it out
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_plan(cls, plan: Plan, sizes: list[int], prefix: str) -> RunResults:
        return cls(plan, {p.ref: expected_thumbs(p, sizes, prefix) for p in plan.todo})

    def shas_to_encode(self) -> list[str]:
        return sorted({p.sha256 for p in self.plan.todo})

    def thumbnail_jobs(self, along: Iterable[str] = ()) -> dict[str, dict[str, dict[str, str]]]:
        """Per user, each photo's path -> its thumbnail keys per size, but for the photos whose content
        the encoders stage (`along`: the paths they are given, from `thumbnails_along`)."""
        given = set(along)
        left_out = {p.sha256 for p in self.plan.todo if p.path in given}
        jobs: dict[str, dict[str, dict[str, str]]] = {}
        for photo in self.plan.todo:
            if photo.sha256 not in left_out:
                jobs.setdefault(photo.username, {})[photo.path] = self.thumbs[photo.ref]
        return jobs

    def thumbnails_along(self, photos: list[Photo]) -> dict[str, list[dict[str, str]]]:
        """For the encoders to stage: per photo to encode (`to_encode`), the thumbnail keys of every
        photo with its content (a copy under another name is staged from the same decode)."""
        paths = {p.sha256: p.path for p in photos}
        along: dict[str, list[dict[str, str]]] = {}
        for photo in self.plan.todo:
            if photo.sha256 in paths:
                along.setdefault(paths[photo.sha256], []).append(self.thumbs[photo.ref])
        return along

    def to_encode(self, cached: Iterable[str]) -> list[Photo]:
        """Each distinct content once, except those whose encoding is already stored (`cached`)."""
        known = set(cached)
        for sha in known:
            self.verdicts[sha] = (ENCODED, None)
        return list({p.sha256: p for p in self.plan.todo if p.sha256 not in known}.values())

    def add_encodings(self, results: dict[str, FaceResult]) -> dict[str, list[float]]:
        """Record each content's verdict; returns the new encodings to store."""
        for sha, result in results.items():
            self.verdicts[sha] = (result.status, result.reason if result.status != ENCODED else result.weak)
            if result.encoding:
                self.new_encodings[sha] = result.encoding
        return {sha: r.encoding for sha, r in results.items() if r.encoding}

    def add_thumbnails(
        self,
        username: str,
        problems: dict[str, str | None] | None,
        error: BaseException | None,
        along: Mapping[str, str | None] | None = None,
    ) -> list[str]:
        """Record a user's thumbnails; returns the staged keys no longer wanted (rejected photos).

        `problems` (a thumbnail task's result) maps a photo's path to None when staged or to why it
        could not be decoded; a photo that cannot be decoded is rejected, a task that failed outright
        is an error. `along` maps the contents the encoders staged to None, or to why they could
        not write them (an error, tried again next run).
        """
        discard: list[str] = []
        for photo in (p for p in self.plan.todo if p.username == username):
            if self.verdicts[photo.sha256][0] != ENCODED or photo.ref in self.identity:
                discard += self.thumbs[photo.ref].values()
                continue
            if along is not None and photo.sha256 in along:
                failure = along[photo.sha256]
                if failure is None:
                    self.staged.setdefault(username, []).append(photo)
                else:
                    self.errors.append({"file": photo.path, "error": failure})
                    discard += self.thumbs[photo.ref].values()
                continue
            reason = (problems or {}).get(photo.path) if error is None else f"thumbnail failed: {error}"
            if reason is None:
                self.staged.setdefault(username, []).append(photo)
            elif error is None:
                self.verdicts[photo.sha256] = (REJECTED, reason)
            else:
                self.errors.append({"file": photo.path, "error": reason})
        return discard

    def identity_shas(self, cached: Iterable[str]) -> list[str]:
        """Content hashes whose stored encodings the identity checks need beyond `cached` and new ones."""
        have = set(cached) | set(self.new_encodings)
        accepted = [p.sha256 for p in self.plan.unchanged]
        accepted += [
            r["sha256"] for recs in self.plan.held.values() for r in recs if r.get("status") == ENCODED
        ]
        return sorted(set(accepted) - have)

    def identity_candidates(self, stored: dict[str, list[float]]) -> list[Candidate]:
        """Every photo with a face to check: those accepted before (established), this run's encoded ones."""
        encodings = {**stored, **self.new_encodings}
        candidates = [
            Candidate(p.ref, p.username, p.sha256, encodings[p.sha256], established=True)
            for p in self.plan.unchanged
            if p.sha256 in encodings
        ]
        candidates += [
            Candidate(f"{user}/{r['filename']}", user, r["sha256"], encodings[r["sha256"]], established=True)
            for user, recs in self.plan.held.items()
            for r in recs
            if r.get("status") == ENCODED and r.get("sha256") in encodings
        ]
        candidates += [
            Candidate(p.ref, p.username, p.sha256, encodings[p.sha256])
            for p in self.plan.todo
            if self.verdicts.get(p.sha256, ("",))[0] == ENCODED and p.sha256 in encodings
        ]
        return candidates

    def add_identity(self, check: IdentityCheck) -> None:
        """Leave out the photos the identity checks rejected (only photos of readable folders)."""
        refs = {p.ref for p in self.plan.unchanged + self.plan.todo}
        self.identity = {ref: why for ref, why in check.rejected.items() if ref in refs}
        self.conflicts = check.conflicts

    def upload_jobs(self) -> dict[str, list[str]]:
        """Per user, the staged object keys to upload."""
        return {
            user: sorted(k for p in photos for k in self.thumbs[p.ref].values())
            for user, photos in self.staged.items()
        }

    def add_uploads(self, failed: Mapping[str, BaseException | str]) -> None:
        """Record the upload stage; `failed` maps each key still not in the store to its last error.

        A photo counts as uploaded only when every one of its thumbnails is; the others are errors,
        recorded without thumbnails so that the next run tries them again.
        """
        for photos in self.staged.values():
            for photo in photos:
                errors = [failed[k] for k in self.thumbs[photo.ref].values() if k in failed]
                if errors:
                    self.errors.append({"file": photo.path, "error": f"upload failed: {errors[0]}"})
                else:
                    self.uploaded[photo.ref] = self.thumbs[photo.ref]

    def outcome(self, users: dict[str, list[Photo]], recorded: Recorded) -> Outcome:
        return collect_outcome(users, self.plan, recorded, self.verdicts, self.uploaded, self.identity)


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
    results: RunResults,
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
    plan = results.plan
    rejected = [{"file": r.path, "reason": r.reason} for r in found.rejected] + outcome.rejected
    return {
        "users": len(found.users),
        "photos": len(found.photos),
        "encoded": len(results.new_encodings),
        "unchanged": len(plan.unchanged),
        "rejected": rejected,
        "weak": outcome.weak,
        "uploaded": sum(len(k) for k in results.uploaded.values()),
        "upserted": upserted,
        "removed_users": removed_users,
        "deleted_objects": deleted_objects,
        "errors": results.errors,
        "conflicts": results.conflicts,
        "bytes_read": found.bytes_read,
        "per_user": user_rows(outcome, plan, set(results.new_encodings), results.uploaded),
        "images": where.get("images", ""),
        "store": store,
        "catalog": where.get("catalog", ""),
        "bundle": bundle,
        "warnings": list(warnings or []),
        "seconds": seconds,
    }
