"""Settings from the Prefect blocks they name, read from the configured API (the CLI's side)."""

from __future__ import annotations

from typing import Any

from facelogin.orchestration.api import api_url


class BlockError(RuntimeError):
    """A block the settings name cannot be read; the message names the setting and the fix."""


def settings_with_blocks(settings: Any) -> Any:
    """Settings with what their named Prefect blocks hold (the CLI's side; the flow reads them itself)."""
    if not settings.block_names:
        return settings
    names = ", ".join(f"{k}={v}" for k, v in settings.block_names.items())
    if not api_url():
        raise BlockError(f"{names} names Prefect blocks: set PREFECT_API_URL to the server that holds them")
    from prefect.blocks.system import Secret
    from prefect_aws import AwsCredentials, S3Bucket

    loaded: dict[str, Any] = {}
    for key, block_type, name in (
        ("s3", S3Bucket, settings.s3_block),
        ("credentials", AwsCredentials, settings.aws_credentials_block),
        ("secret", Secret, settings.mongodb_secret_block),
    ):
        if not name:
            continue
        try:
            loaded[key] = block_type.load(name)
        except ValueError as exc:  # Prefect's "Unable to find block document named ..."
            raise BlockError(
                f"no {block_type.__name__} block named {name!r} on {api_url()}: create it (Blocks in the UI) "
                f"or fix the setting ({exc.__class__.__name__})"
            ) from None
    uri = loaded["secret"].get() if "secret" in loaded else None
    return settings.with_block_objects(loaded.get("s3"), loaded.get("credentials"), str(uri) if uri else None)
