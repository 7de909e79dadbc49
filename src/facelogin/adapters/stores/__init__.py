"""Object stores for thumbnails and bundles, and the one factory that opens the right one.

`open_store` is the only place that knows which backend a URL or the settings name; everything
else asks the store it got (`is_transient`, `url_for`, `describe`). Importing this package loads
no boto3: the S3 module is imported only for an S3 store.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from facelogin.adapters.stores.base import URL_MODES, MissingObject, ObjectStore, StoreError
from facelogin.adapters.stores.local import DirStore

if TYPE_CHECKING:
    from facelogin.settings import Settings

__all__ = [
    "URL_MODES",
    "DirStore",
    "MissingObject",
    "ObjectStore",
    "StoreError",
    "open_store",
    "store_location",
]


def open_store(where: Settings | str | PurePath, checking: bool = False) -> ObjectStore:
    """The store `where` names: `s3://bucket[/...]` (the prefix is the caller's), `file://path` or a
    path; or for settings, their bucket, else (embedded defaults) the local directory laid out like it.

    `checking`: a client that gives up in seconds, for a check before any work.
    """
    if isinstance(where, PurePath):
        return DirStore(Path(where))
    if isinstance(where, str):
        if where.startswith("s3://"):
            from facelogin.adapters.stores.s3 import S3Store, s3_client

            return S3Store(s3_client(), where[len("s3://") :].partition("/")[0])
        if where.startswith("file://"):
            return DirStore(Path(url2pathname(urlsplit(where).path)))
        return DirStore(Path(where))
    if not where.bucket:
        return DirStore(where.objects_dir)
    from facelogin.adapters.stores.s3 import S3Store, s3_client

    if checking:
        return S3Store(s3_client(2, read_timeout=5.0, access=where.aws), where.bucket)
    return S3Store(
        s3_client(where.io_threads, access=where.aws),
        where.bucket,
        url_mode=where.url_mode,
        base_url=where.base_url,
        presign_seconds=where.presign_seconds,
    )


def store_location(settings: Settings) -> str:
    """The store the settings name, for a person, without opening it (no client is built)."""
    return f"s3://{settings.bucket}" if settings.bucket else f"local directory {settings.objects_dir}"
