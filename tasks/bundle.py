"""Publish stage: the encodings bundle, locally and in the object store, pointer last, old versions pruned."""

from __future__ import annotations

from typing import Any

from prefect import task

from facelogin.settings import Settings
from facelogin.sync import publish
from facelogin.sync.outcome import Outcome
from tasks.policy import IO_RETRIES


@task(task_run_name="publish-bundle", **IO_RETRIES)
def publish_bundle(
    settings: Settings, outcome: Outcome, created_at: str, model: dict[str, str]
) -> dict[str, Any]:
    """Build the versioned encodings bundle and publish it where the login script reads it.

    When the published bundle was built from the same inputs, nothing is loaded or written; older
    versions are deleted everywhere (facelogin.sync.publish).
    """
    return publish.publish_bundle(settings, outcome, created_at, model)
