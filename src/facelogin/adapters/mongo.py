"""The pymongo client, one per URI and process (clients are thread-safe and pool their connections)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo import MongoClient

_open_uris: set[str] = set()
CHECK_TIMEOUT_MS = 2000  # a reachability check: a server that is up answers in milliseconds


@lru_cache(maxsize=8)
def mongo_client(uri: str, timeout_ms: int = 5000) -> MongoClient[dict[str, Any]]:
    """A client whose operations give up after `timeout_ms` without a server (then the task retries)."""
    from pymongo import MongoClient

    _open_uris.add(uri)
    return MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True)


def close_mongo(uri: str) -> None:
    """Close and forget the cached client for `uri` (the embedded server it talks to is stopping)."""
    if uri in _open_uris:
        _open_uris.discard(uri)
        for timeout_ms in CHECK_TIMEOUT_MS, 5000:
            mongo_client(uri, timeout_ms).close()
    mongo_client.cache_clear()
