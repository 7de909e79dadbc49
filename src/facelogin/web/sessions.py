"""The session cookie: who logged in and with which login event, signed with HMAC-SHA256, expiring.

Pure apart from `session_key`, which reads (or once creates) the key kept in the state directory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facelogin.files import private_dir

COOKIE = "facelogin_session"


@dataclass(frozen=True)
class Session:
    username: str
    login_id: str  # the `logins` event of this login
    issued: float  # epoch seconds
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def sign(session: Session, key: bytes) -> str:
    payload = {"u": session.username, "l": session.login_id, "i": session.issued, "e": session.expires}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(key, body)}"


def verify(token: str | None, key: bytes, now: float) -> Session | None:
    """The session in a cookie value, or None when it is missing, tampered with or expired."""
    if not token or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    try:
        data: Any = json.loads(_unb64(body))
        session = Session(str(data["u"]), str(data["l"]), float(data["i"]), float(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.issued <= now < session.expires else None


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
