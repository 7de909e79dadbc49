"""A synced state for the web tests and bench/web.py, written with the sync's own pieces in seconds.

What a `facelogin sync` leaves behind, without running the flow: thumbnails in the store under the
sync's keys, one MongoDB document per user made by the sync's `user_document`, and the bundle
published locally (Settings.bundle_dir) and in the store, by the sync's publisher.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from facelogin.adapters.catalog import Catalog
from facelogin.adapters.connect import catalog_server, open_store
from facelogin.adapters.mongo import mongo_client
from facelogin.adapters.stores import DirStore
from facelogin.bundle import build_bundle, publish_bundle
from facelogin.faces import ENCODED, model_info
from facelogin.imaging import make_thumbnails
from facelogin.naming import thumb_key
from facelogin.settings import Settings
from facelogin.sync.outcome import user_document
from tests.photos import Encodings, encode_tree

__all__ = ["Encodings", "encode_tree", "write_state"]


@lru_cache(maxsize=256)
def _thumbnails(
    photo: Path, sizes: tuple[int, ...], max_side: int, stamp: tuple[int, int]
) -> dict[int, bytes]:
    """make_thumbnails of one photo, once per process for the same file (`stamp`: its mtime and size):
    every web test writes the same sample tree, and the thumbnails are the setting, not the test."""
    return make_thumbnails(photo, list(sizes), max_side)


def thumbnails(photo: Path, sizes: list[int], max_side: int) -> dict[int, bytes]:
    info = photo.stat()
    return _thumbnails(photo, tuple(sizes), max_side, (info.st_mtime_ns, info.st_size))


def write_state(
    settings: Settings, images: Path, encodings: Encodings, users: list[str] | None = None
) -> dict[str, Any]:
    """Sync `users` (default: every folder) into the store, MongoDB and the bundle of `settings`.

    With embedded defaults (no MongoDB URI) the embedded server is started for the writing and
    stopped after, as a sync does. Returns the bundle manifest.
    """
    users = sorted(users if users is not None else encodings)
    store = open_store(settings)
    docs = []
    for user in users:
        records = []
        for photo in sorted((images / user).iterdir()):
            keys = {}
            for size, data in thumbnails(photo, settings.thumb_sizes, settings.detect_max_side).items():
                key = thumb_key(settings.thumbs_prefix, size, user, photo.name)
                store.put(key, data, "image/jpeg", "private, max-age=86400", public=True)
                keys[str(size)] = key
            content = photo.read_bytes()
            records.append(
                {
                    "filename": photo.name,
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "bytes": len(content),
                    "status": ENCODED,
                    "reason": None,
                    "thumbs": keys,
                }
            )
        urls = {k: store.stable_url(k) for r in records for k in r["thumbs"].values()}
        docs.append(user_document(user, records, settings.profile_photos.get(user), urls))
    with catalog_server(settings) as running:
        uri = running.mongodb()
        assert uri is not None
        catalog = Catalog(mongo_client(uri)[running.database])
        catalog.ensure_indexes()
        catalog.upsert_users(docs)
    data, manifest = build_bundle(
        {user: list(encodings[user].values()) for user in users},
        {doc["username"]: doc["profile_image"] for doc in docs},
        "2026-11-28T00:00:00+00:00",
        model_info(settings.detect_max_side, settings.upsample),
    )
    publish_bundle(DirStore(settings.bundle_dir), "", data, manifest)
    publish_bundle(store, settings.bundle_prefix, data, manifest)
    return manifest
