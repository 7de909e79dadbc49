"""Settings from Prefect blocks, read at run time: the one reader, for the CLI and the flow alike.

FACELOGIN_S3_BLOCK names a prefect-aws S3Bucket block (its bucket and AwsCredentials),
FACELOGIN_AWS_CREDENTIALS_BLOCK an AwsCredentials block on its own, FACELOGIN_MONGODB_SECRET_BLOCK
a Secret block holding the URI. Values come from the server when the command or the run starts,
never from prefect.yaml nor from a flow run's parameters, and stay in SecretStr fields: no log
line, summary or artifact shows them. Not a task: its result holds secrets, and a task's result
may be persisted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facelogin.orchestration.api import api_url

if TYPE_CHECKING:
    from facelogin.settings import Settings


class BlockError(RuntimeError):
    """A block the settings name cannot be read; the message names the setting and the fix."""


def settings_with_blocks(settings: Settings) -> Settings:
    """The settings with what their named blocks hold; as they are when they name none.

    A command reads blocks only from a configured API (PREFECT_API_URL), the server that holds
    them, rather than let Prefect start a server of its own for the lookup; a flow run reads them
    from the API it reports to.
    """
    if not settings.block_names:
        return settings
    names = ", ".join(f"{k}={v}" for k, v in settings.block_names.items())
    where = api_url()
    if not where and not _in_flow_run():
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
                f"no {block_type.__name__} block named {name!r} on {where or 'the Prefect API'}: create it "
                f"(Blocks in the UI) or fix the setting ({exc.__class__.__name__})"
            ) from None
    uri = loaded["secret"].get() if "secret" in loaded else None
    return settings.with_block_objects(loaded.get("s3"), loaded.get("credentials"), str(uri) if uri else None)


def _in_flow_run() -> bool:
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None
