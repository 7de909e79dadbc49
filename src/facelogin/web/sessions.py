"""Server-side web sessions: a random id in a signed cookie, its record in MongoDB (`sessions`).

Logging out, `facelogin remove USER` and an admin revoke delete the record, so the cookie stops
working at once. A session ends after `idle` seconds without a request and after `lifetime`
seconds in all. The record is keyed by the id's SHA-256: a copy of the database holds no cookie
that works. A new id is made at every login; a login from a browser that had a session ends it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facelogin.files import private_dir

COOKIE = "facelogin_session"
TOUCH_EVERY = 60.0  # s: how stale `last_seen` may get before a request writes it again


@dataclass(frozen=True)
class Session:
    key: str  # sha256 of the id: the record's _id
    username: str
    login_id: str  # the `logins` event of this login
    created: float  # epoch seconds
    last_seen: float
    expires: float  # absolute end


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def new_id() -> str:
    return secrets.token_urlsafe(32)


def record_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def sign(session_id: str, key: bytes) -> str:
    return f"{session_id}.{_mac(key, session_id)}"


def unsign(token: str | None, key: bytes) -> str | None:
    """The session id in a cookie value, or None when it is missing or not signed by `key`."""
    if not token or token.count(".") != 1 or len(token) > 200:
        return None
    session_id, mac = token.split(".")
    try:
        good = hmac.compare_digest(mac.encode(), _mac(key, session_id).encode())
    except (TypeError, UnicodeEncodeError):
        return None
    return session_id if good and session_id else None


class SessionStore:
    """The `sessions` collection: create, look up (ending idle and expired ones), end."""

    def __init__(self, collection: Any, idle: float, lifetime: float, clock: Callable[[], float]) -> None:
        self.collection = collection
        self.idle = idle
        self.lifetime = lifetime
        self.clock = clock

    def ensure_indexes(self) -> None:
        # MongoDB deletes records past `expires_at` by itself; every lookup checks the times too.
        self.collection.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")
        self.collection.create_index("user", name="user")

    def create(self, username: str, login_id: str, client: str | None) -> str:
        """A new session for `username`; returns its id (for the cookie only: it is not stored)."""
        session_id, now = new_id(), self.clock()
        self.collection.insert_one(
            {
                "_id": record_key(session_id),
                "user": username,
                "login": login_id,
                "client": client,
                "created": now,
                "last_seen": now,
                "expires": now + self.lifetime,
                "expires_at": datetime.fromtimestamp(now + self.lifetime, UTC),
            }
        )
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, ended, idle too long, past its lifetime)."""
        if not session_id:
            return None
        key, now = record_key(session_id), self.clock()
        doc = self.collection.find_one({"_id": key})
        if doc is None:
            return None
        try:
            session = Session(
                key,
                str(doc["user"]),
                str(doc["login"]),
                float(doc["created"]),
                float(doc["last_seen"]),
                float(doc["expires"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if now >= session.expires or now - session.last_seen >= self.idle or now < session.created:
            self.collection.delete_one({"_id": key})
            return None
        if now - session.last_seen >= TOUCH_EVERY:
            self.collection.update_one({"_id": key}, {"$set": {"last_seen": now}})
        return session

    def end(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        return bool(self.collection.delete_one({"_id": record_key(session_id)}).deleted_count)

    def end_user(self, username: str) -> int:
        """End every session of `username` (an admin revoke, or the user removed)."""
        return int(self.collection.delete_many({"user": username}).deleted_count)


def session_key(secret: str | None, path: Path) -> bytes:
    """The signing key: FACELOGIN_SESSION_SECRET when set, else a random key kept (0600) at `path`.

    Created with O_EXCL, so two processes starting at once agree on one key.
    """
    if secret:
        return hashlib.sha256(secret.encode()).digest()
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise ValueError(f"{path} does not hold a session key: delete it to make a new one") from None
    private_dir(path.parent)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key
