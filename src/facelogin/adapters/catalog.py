"""The MongoDB side: one document per user (profile image, photos and their status) and stored encodings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo import DeleteOne, UpdateOne
from pymongo.database import Database

USERS = "users"
FACES = "faces"


class Catalog:
    """Users and face encodings in an already-connected MongoDB database; no retries in here."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.db = db
        self.users = db[USERS]
        self.faces = db[FACES]

    def ensure_indexes(self) -> None:
        self.users.create_index("username", unique=True, name="username_unique")

    def load_photos(self) -> dict[str, dict[str, dict[str, Any]]]:
        """What the last runs recorded: username -> filename -> photo record."""
        state: dict[str, dict[str, dict[str, Any]]] = {}
        for doc in self.users.find({}, {"_id": 0, "username": 1, "photos": 1}):
            state[doc["username"]] = {p["filename"]: p for p in doc.get("photos") or []}
        return state

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

    def upsert_users(self, docs: list[dict[str, Any]], now: datetime | None = None) -> int:
        """Write each user's document in one bulk request; re-running never duplicates."""
        if not docs:
            return 0
        now = now or datetime.now(UTC)
        ops = [
            UpdateOne(
                {"username": doc["username"]},
                {"$set": {**doc, "updated_at": now}, "$setOnInsert": {"created_at": now}},
                upsert=True,
            )
            for doc in docs
        ]
        self.users.bulk_write(ops, ordered=False)
        return len(ops)

    def remove_users(self, usernames: Iterable[str]) -> int:
        ops = [DeleteOne({"username": name}) for name in usernames]
        if not ops:
            return 0
        return self.users.bulk_write(ops, ordered=False).deleted_count

    def remove_encodings_except(self, keep: Iterable[str]) -> int:
        """Drop encodings of photos no longer enrolled: biometric data is not kept longer than needed."""
        return self.faces.delete_many({"_id": {"$nin": sorted(set(keep))}}).deleted_count

    def user(self, username: str) -> dict[str, Any] | None:
        return self.users.find_one({"username": username}, {"_id": 0})


def is_transient(exc: BaseException) -> bool:
    """Network faults and fail-overs are worth a retry; bad queries and auth errors are not."""
    from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout

    return isinstance(exc, (AutoReconnect, ConnectionFailure, NetworkTimeout))
