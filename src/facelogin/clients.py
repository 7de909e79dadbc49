"""Clients and adapters built from settings, once per process (boto3 and pymongo clients are thread-safe)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from facelogin.catalog import Catalog
from facelogin.settings import Settings
from facelogin.store import DirStore, ObjectStore, S3Store

if TYPE_CHECKING:
    from pymongo import MongoClient


@lru_cache(maxsize=8)
def s3_client(pool_size: int = 16) -> Any:
    """A boto3 S3 client from boto3's own chain (AWS_ENDPOINT_URL, AWS_PROFILE, keys, region).

    botocore's own retries are off: the Prefect tasks retry, so every retry is visible in the UI.
    """
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


@lru_cache(maxsize=8)
def mongo_client(uri: str) -> MongoClient[dict[str, Any]]:
    from pymongo import MongoClient

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
