"""The boto3 S3 client, built from boto3's own chain (AWS_ENDPOINT_URL, AWS_PROFILE, keys, region)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

# The parts of boto3's environment that change which client a process gets.
_CHAIN_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


def s3_client(pool_size: int = 16, max_attempts: int | None = None) -> Any:
    """One client per process and configuration (clients are thread-safe and hold the connection pool).

    `max_attempts` None leaves retries to boto3's own chain (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE).
    """
    return _s3_client(pool_size, max_attempts, tuple(os.environ.get(name) for name in _CHAIN_ENV))


@lru_cache(maxsize=8)
def _s3_client(pool_size: int, max_attempts: int | None, chain: tuple[str | None, ...]) -> Any:
    import boto3
    from botocore.config import Config

    retries: Any = None if max_attempts is None else {"mode": "standard", "total_max_attempts": max_attempts}
    config = Config(
        retries=retries,
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=pool_size,
        signature_version="s3v4",
    )
    return boto3.session.Session().client("s3", config=config)
