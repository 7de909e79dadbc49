"""Settings from Prefect blocks, read at run time: the bucket and AWS access, the MongoDB URI.

FACELOGIN_S3_BLOCK names a prefect-aws S3Bucket block (its bucket and AwsCredentials),
FACELOGIN_AWS_CREDENTIALS_BLOCK an AwsCredentials block on its own, FACELOGIN_MONGODB_SECRET_BLOCK
a Secret block holding the URI. Values come from the server when the run starts, never from
prefect.yaml, and stay in SecretStr fields: no log line, summary or artifact shows them.
Not a task: its result holds secrets, and a task's result may be persisted.
"""

from __future__ import annotations

from typing import Any

from facelogin.settings import Settings


def settings_from_blocks(settings: Settings) -> Settings:
    """The settings with what their named blocks hold; as they are when they name none."""
    if not settings.block_names:
        return settings
    from prefect.blocks.system import Secret
    from prefect_aws import AwsCredentials, S3Bucket

    s3_bucket = S3Bucket.load(settings.s3_block) if settings.s3_block else None
    credentials = (
        AwsCredentials.load(settings.aws_credentials_block) if settings.aws_credentials_block else None
    )
    secret: Any = Secret.load(settings.mongodb_secret_block) if settings.mongodb_secret_block else None
    uri = secret.get() if secret is not None else None
    return settings.with_block_objects(s3_bucket, credentials, str(uri) if uri else None)
