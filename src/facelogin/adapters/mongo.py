"""The pymongo client, one per URI and process (clients are thread-safe and pool their connections)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo import MongoClient

_open_uris: set[str] = set()


@lru_cache(maxsize=8)
def mongo_client(uri: str) -> MongoClient[dict[str, Any]]:
    from pymongo import MongoClient

    _open_uris.add(uri)
    return MongoClient(uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, tz_aware=True)


def close_mongo(uri: str) -> None:
    """Close and forget the cached client for `uri` (the embedded server it talks to is stopping)."""
    if uri in _open_uris:
        _open_uris.discard(uri)
        mongo_client(uri).close()
    mongo_client.cache_clear()
