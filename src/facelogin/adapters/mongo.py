"""The pymongo clients, one per URI and timeout (clients are thread-safe and pool their connections)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo import MongoClient

CHECK_TIMEOUT_MS = 2000  # a reachability check: a server that is up answers in milliseconds

# Kept until close_mongo, never dropped unclosed: a client collected unclosed warns (ResourceWarning).
_clients: dict[tuple[str, int], MongoClient[dict[str, Any]]] = {}
_lock = threading.Lock()


def mongo_client(uri: str, timeout_ms: int = 5000) -> MongoClient[dict[str, Any]]:
    """A client whose operations give up after `timeout_ms` without a server (then the task retries)."""
    from pymongo import MongoClient

    with _lock:
        client = _clients.get((uri, timeout_ms))
        if client is None:
            client = MongoClient(
                uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True
            )
            _clients[(uri, timeout_ms)] = client
        return client


def close_mongo(uri: str) -> None:
    """Close and forget the clients for `uri` (the embedded server they talk to is stopping)."""
    with _lock:
        closing = [_clients.pop(key) for key in [k for k in _clients if k[0] == uri]]
    for client in closing:
        client.close()
