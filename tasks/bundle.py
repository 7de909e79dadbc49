"""Publish stage: the encodings bundle, locally and in the object store, pointer last."""

from __future__ import annotations

from typing import Any

from prefect import task

from facelogin import bundle
from facelogin.clients import open_store
from facelogin.settings import Settings
from facelogin.store import DirStore
from tasks.retry import transient_s3


@task(task_run_name="publish-bundle", retry_condition_fn=transient_s3, retry_jitter_factor=0.5)
def publish_bundle(
    settings: Settings,
    encodings: dict[str, list[list[float]]],
    profiles: dict[str, dict[str, Any] | None],
    created_at: str,
    model: dict[str, str],
) -> dict[str, Any]:
    """Build the versioned encodings bundle and publish it where the login script reads it."""
    data, manifest = bundle.build_bundle(encodings, profiles, created_at, model)
    store = open_store(settings)
    published = []
    for target, prefix in ((DirStore(settings.bundle_dir), ""), (store, settings.bundle_prefix)):
        if bundle.published_sha(target, prefix) != manifest["sha256"]:
            bundle.publish_bundle(target, prefix, data, manifest)
            published.append(target.location)
    return {
        "version": manifest["version"],
        "sha256": manifest["sha256"],
        "users": len(manifest["users"]),
        "encodings": sum(u["encodings"] for u in manifest["users"]),
        "path": str(settings.bundle_dir),
        "location": f"{store.location}/{bundle.key_for(settings.bundle_prefix, bundle.LATEST)}",
        "published_to": published,
    }
