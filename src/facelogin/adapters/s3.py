"""The boto3 S3 client, built from boto3's own chain (AWS_ENDPOINT_URL, AWS_PROFILE, keys, region)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facelogin.settings import AwsAccess

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


def s3_client(pool_size: int = 16, read_timeout: float = 30.0, access: AwsAccess | None = None) -> Any:
    """One client per process and configuration (clients are thread-safe and hold the connection pool).

    Each request is retried by botocore where it failed (standard mode: 5xx, SlowDown, throttling,
    timeouts and dropped connections; 3 attempts), as boto3's own chain configures it
    (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE). What still fails is left to the task's retries.
    `access` (from a Prefect AwsCredentials block) takes the place of the chain's keys, profile,
    region and endpoint where it sets them.
    """
    return _s3_client(pool_size, read_timeout, tuple(os.environ.get(name) for name in _CHAIN_ENV), access)


@lru_cache(maxsize=8)
def _s3_client(
    pool_size: int, read_timeout: float, chain: tuple[str | None, ...], access: AwsAccess | None
) -> Any:
    import boto3
    from botocore.config import Config

    # botocore's own default is still its "legacy" mode (5 attempts, fewer faults retried).
    retries: Any = None if os.environ.get("AWS_RETRY_MODE") else {"mode": "standard"}
    config = Config(
        retries=retries,
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=pool_size,
        signature_version="s3v4",
    )
    given = {k: v for k, v in (access.client_kwargs() if access else {}).items() if v}
    endpoint = given.pop("endpoint_url", None)
    session = boto3.session.Session(**given)
    return session.client("s3", config=config, **({"endpoint_url": endpoint} if endpoint else {}))
