"""Publish stage: the encodings bundle, locally and in the object store, pointer last."""

from __future__ import annotations

from typing import Any

from prefect import task

from facelogin import bundle
from facelogin.adapters.connect import open_store
from facelogin.adapters.store import DirStore
from facelogin.settings import Settings
from facelogin.sync.outcome import Outcome
from tasks.policy import S3_RETRIES


@task(task_run_name="publish-bundle", **S3_RETRIES)
def publish_bundle(
    settings: Settings,
    outcome: Outcome,
    stored: dict[str, list[float]],
    created_at: str,
    model: dict[str, str],
) -> dict[str, Any]:
    """Build the versioned encodings bundle and publish it where the login script reads it."""
    store = open_store(settings)
    profiles = outcome.profiles(settings.profile_photos, store.stable_url)
    data, manifest = bundle.build_bundle(outcome.bundle_encodings(stored), profiles, created_at, model)
    targets = [(DirStore(settings.bundle_dir), ""), (store, settings.bundle_prefix)]
    published = bundle.publish_where_changed(targets, data, manifest)
    return bundle.describe(manifest, settings.bundle_dir, store, settings.bundle_prefix) | {
        "published_to": published
    }
