"""The MongoDB side: one document per user (profile image, photos and their status) and stored encodings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DeleteOne, UpdateOne
from pymongo.database import Database

USERS = "users"
FACES = "faces"
LOGINS = "logins"
SESSIONS = "sessions"
SETTING = "FACELOGIN_MONGODB_URI"

# What pymongo says when nothing listens at the address, or the host name does not resolve: a
# wrong setting or a server that is down, which waiting will not mend.
_UNREACHABLE = (
    "connection refused",
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated",
    "name does not resolve",
    "getaddrinfo failed",
)


# Documents per reply when reading whole collections: fewer round trips than the driver's default.
_BATCH = 5000


@dataclass
class RecordedUsers:
    """What the catalog holds for each user: photo records (username -> filename -> record) and
    the digest of the stored document (None for one written before digests)."""

    photos: dict[str, dict[str, dict[str, Any]]]
    digests: dict[str, str | None]


class CatalogError(RuntimeError):
    """A permanent MongoDB problem (unreachable, refused credentials) with a message a person can act on."""


def document_digest(doc: dict[str, Any]) -> str:
    """sha256 of a user document's content (what the sync writes), in a stable form."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def describe_uri(uri: str) -> str:
    """The hosts of a MongoDB URI without its credentials or options: `db.example.org:27017`."""
    rest = uri.split("://", 1)[-1]
    hosts = rest.rsplit("@", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    return hosts or "localhost"


class Catalog:
    """Users and face encodings in an already-connected MongoDB database; no retries in here."""

    def __init__(self, db: Database[dict[str, Any]], where: str = "MongoDB") -> None:
        self.db = db
        self.where = where  # the hosts, for messages: never the URI itself (it may hold a password)
        self.users = db[USERS]
        self.faces = db[FACES]
        self.logins = db[LOGINS]
        self.sessions = db[SESSIONS]

    def check(self) -> None:
        """The server answers. Refused, unresolvable or bad credentials: CatalogError at once."""
        from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

        try:
            self.db.client.admin.command("ping")
        except ServerSelectionTimeoutError as exc:
            text = str(exc).lower()
            if any(marker in text for marker in _UNREACHABLE):
                reason = "refused the connection" if "refused" in text else "cannot be found (host name)"
                raise CatalogError(
                    f"MongoDB at {self.where} {reason}: check {SETTING} and that the server is running"
                ) from None
            raise CatalogError(
                f"MongoDB at {self.where} did not answer: check {SETTING} and that the server is running "
                "and reachable from here"
            ) from None
        except PyMongoError as exc:  # refused credentials, a server that is not MongoDB, ...
            raise CatalogError(failure_message(exc, self.where)) from None

    def ensure_indexes(self) -> None:
        self.users.create_index("username", unique=True, name="username_unique")

    def load_photos(self) -> dict[str, dict[str, dict[str, Any]]]:
        """What the last runs recorded: username -> filename -> photo record."""
        return self.load_users().photos

    def load_users(self) -> RecordedUsers:
        """Every user's photo records and document digest, in one read of the collection.

        The digests let `upsert_users` skip unchanged documents without reading them again: the
        server's cost is per document read (~0.35 s per 5,000 users with nx-27017).
        """
        recorded = RecordedUsers({}, {})
        fields = {"_id": 0, "username": 1, "photos": 1, "digest": 1}
        for doc in self.users.find({}, fields, batch_size=_BATCH):
            recorded.photos[doc["username"]] = {p["filename"]: p for p in doc.get("photos") or []}
            recorded.digests[doc["username"]] = doc.get("digest")
        return recorded

    def usernames(self) -> list[str]:
        """Every recorded user's name (the removal guard's count, without the photo records)."""
        return [d["username"] for d in self.users.find({}, {"_id": 0, "username": 1}, batch_size=_BATCH)]

    def load_encodings(self, shas: Iterable[str]) -> dict[str, list[float]]:
        wanted = sorted(set(shas))
        found: dict[str, list[float]] = {}
        for start in range(0, len(wanted), 500):
            for doc in self.faces.find({"_id": {"$in": wanted[start : start + 500]}}):
                found[doc["_id"]] = list(doc["encoding"])
        return found

    def save_encodings(self, encodings: dict[str, list[float]], model: dict[str, str]) -> int:
        if not encodings:
            return 0
        ops = [
            UpdateOne({"_id": sha}, {"$set": {"encoding": enc, "model": model}}, upsert=True)
            for sha, enc in encodings.items()
        ]
        self.faces.bulk_write(ops, ordered=False)
        return len(ops)

    def upsert_users(
        self,
        docs: list[dict[str, Any]],
        now: datetime | None = None,
        stored: dict[str, str | None] | None = None,
    ) -> int:
        """Write the documents that changed, in one bulk request; returns how many were written.

        Each document is stored with the digest of its content, so an unchanged user costs one
        read and no write (a nightly run with nothing new writes nothing). `stored` are the
        digests as `load_users` read them under the same sync lock; without them they are read
        here. Re-running never duplicates: the upsert is keyed on the unique username.
        """
        if not docs:
            return 0
        digests = {doc["username"]: document_digest(doc) for doc in docs}
        if stored is None:
            stored = {
                d["username"]: d.get("digest")
                for d in self.users.find(
                    {"username": {"$in": sorted(digests)}}, {"_id": 0, "username": 1, "digest": 1},
                    batch_size=_BATCH,
                )
            }  # fmt: skip
        now = now or datetime.now(UTC)
        ops = [
            UpdateOne(
                {"username": doc["username"]},
                {
                    "$set": {**doc, "digest": digests[doc["username"]], "updated_at": now},
                    "$setOnInsert": {"created_at": now},
                },
                upsert=True,
            )
            for doc in docs
            if stored.get(doc["username"]) != digests[doc["username"]]
        ]
        if ops:
            self.users.bulk_write(ops, ordered=False)
        return len(ops)

    def remove_users(self, usernames: Iterable[str]) -> int:
        """Remove users, and end their web sessions: a removed user is logged out everywhere at once."""
        names = list(usernames)
        ops = [DeleteOne({"username": name}) for name in names]
        if not ops:
            return 0
        removed = self.users.bulk_write(ops, ordered=False).deleted_count
        self.sessions.delete_many({"user": {"$in": names}})
        return removed

    def remove_encodings_except(self, keep: Iterable[str]) -> int:
        """Drop encodings of photos no longer enrolled: biometric data is not kept longer than needed."""
        return self.faces.delete_many({"_id": {"$nin": sorted(set(keep))}}).deleted_count

    def user(self, username: str) -> dict[str, Any] | None:
        return self.users.find_one({"username": username}, {"_id": 0})

    def list_users(self) -> list[dict[str, Any]]:
        """Every user's name, counts, notes (photos rejected or weak, why), profile image and last update,
        by name (no photo records)."""
        fields = {"_id": 0, "username": 1, "counts": 1, "notes": 1, "profile_image": 1, "updated_at": 1}
        return sorted(self.users.find({}, fields), key=lambda d: d["username"])

    def ensure_login_indexes(self) -> None:
        self.logins.create_index([("user", 1), ("time", -1)], name="user_time")

    def record_login(self, event: dict[str, Any]) -> str:
        """Store one login decision (facelogin.audit.login_event); returns its id."""
        return str(self.logins.insert_one(dict(event)).inserted_id)

    def accepted_logins(
        self, username: str, before: datetime | None = None, limit: int = 5
    ) -> list[dict[str, Any]]:
        """The user's accepted logins, newest first (only those before `before` when given); `id` is a str."""
        query: dict[str, Any] = {"user": username, "decision": "accepted"}
        if before is not None:
            query["time"] = {"$lt": before}
        found = self.logins.find(query).sort("time", -1).limit(limit)
        return [{**{k: v for k, v in doc.items() if k != "_id"}, "id": str(doc["_id"])} for doc in found]


def failure_message(exc: BaseException, where: str) -> str:
    """What a person can do about a MongoDB failure, in one line (never the URI: it may hold a password)."""
    from pymongo.errors import OperationFailure, PyMongoError

    if isinstance(exc, CatalogError):
        return str(exc)
    if isinstance(exc, OperationFailure) and exc.code in {13, 18}:  # Unauthorized, AuthenticationFailed
        return f"MongoDB at {where} refused the credentials in {SETTING}"
    if isinstance(exc, OperationFailure):
        detail = (exc.details or {}).get("errmsg") or exc
        return f"MongoDB at {where} refused the request: {detail}"
    if isinstance(exc, PyMongoError) and not is_transient(exc):
        return f"MongoDB at {where} ({SETTING}): {type(exc).__name__}: {exc}"
    return f"MongoDB at {where} is unreachable: check {SETTING} and that the server is running"


def is_transient(exc: BaseException) -> bool:
    """Network faults and fail-overs are worth a retry; bad queries and auth errors are not."""
    from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout

    return isinstance(exc, (AutoReconnect, ConnectionFailure, NetworkTimeout))
