"""Clients and adapters built from settings, once per process (boto3 and pymongo clients are thread-safe)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from facelogin.catalog import Catalog
from facelogin.settings import Settings
from facelogin.store import DirStore, ObjectStore, S3Store

if TYPE_CHECKING:
    from pymongo import MongoClient


_BOTO_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
)


def s3_client(pool_size: int = 16) -> Any:
    """A boto3 S3 client from boto3's own chain (AWS_ENDPOINT_URL, AWS_PROFILE, keys, region).

    One client per process and configuration (clients are thread-safe and hold the connection
    pool). botocore's own retries are off: the Prefect tasks retry, so each retry shows in the UI.
    """
    return _s3_client(pool_size, tuple(os.environ.get(name) for name in _BOTO_ENV))


@lru_cache(maxsize=8)
def _s3_client(pool_size: int, chain: tuple[str | None, ...]) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=pool_size,
        signature_version="s3v4",
    )
    return boto3.session.Session().client("s3", config=config)


_open_mongo_uris: set[str] = set()


@lru_cache(maxsize=8)
def mongo_client(uri: str) -> MongoClient[dict[str, Any]]:
    from pymongo import MongoClient

    _open_mongo_uris.add(uri)
    return MongoClient(uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, tz_aware=True)


def open_store(settings: Settings) -> ObjectStore:
    if settings.embedded_store:
        return DirStore(settings.objects_dir)
    assert settings.bucket
    return S3Store(
        s3_client(settings.upload_workers),
        settings.bucket,
        url_mode=settings.url_mode,
        base_url=settings.base_url,
        presign_seconds=settings.presign_seconds,
    )


def open_catalog(settings: Settings) -> Catalog:
    if not settings.mongodb_uri:
        raise ValueError("no MongoDB URI: the flow starts the embedded server and sets it")
    return Catalog(mongo_client(settings.mongodb_uri)[settings.database])


def close_mongo(uri: str) -> None:
    """Close and forget the cached client for `uri` (the embedded server it talks to is stopping)."""
    if uri in _open_mongo_uris:
        _open_mongo_uris.discard(uri)
        mongo_client(uri).close()
    mongo_client.cache_clear()
