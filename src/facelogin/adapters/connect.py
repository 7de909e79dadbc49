"""The store and catalog a run uses, built from settings."""

from __future__ import annotations

from facelogin.adapters.catalog import Catalog
from facelogin.adapters.mongo import mongo_client
from facelogin.adapters.s3 import s3_client
from facelogin.adapters.store import DirStore, ObjectStore, S3Store
from facelogin.settings import Settings


def open_store(settings: Settings) -> ObjectStore:
    """The bucket, or with embedded defaults the local directory laid out like it."""
    if settings.embedded_store:
        return DirStore(settings.objects_dir)
    assert settings.bucket
    # botocore's own retries are off: the Prefect tasks retry, so each retry shows in the UI.
    return S3Store(
        s3_client(settings.io_threads, max_attempts=1),
        settings.bucket,
        url_mode=settings.url_mode,
        base_url=settings.base_url,
        presign_seconds=settings.presign_seconds,
    )


def open_catalog(settings: Settings) -> Catalog:
    uri = settings.mongodb()
    if not uri:
        raise ValueError("no MongoDB URI: the flow starts the embedded server and sets it")
    return Catalog(mongo_client(uri)[settings.database])
