"""The encodings bundle of a sync's outcome, published locally and in the object store, pointer last,
old versions pruned."""

from __future__ import annotations

from typing import Any

from facelogin import bundle
from facelogin.adapters.connect import open_catalog, open_store
from facelogin.adapters.stores import ObjectStore
from facelogin.settings import Settings
from facelogin.sync.outcome import Outcome


def publish_bundle(
    settings: Settings, outcome: Outcome, created_at: str, model: dict[str, str]
) -> dict[str, Any]:
    """Build the versioned encodings bundle and publish it where the login script reads it.

    When the published bundle was built from the same inputs (users, photos, profile images,
    model), nothing is loaded or written. Older versions are deleted everywhere, so a removed
    user's encodings are not kept in any of them; a login cache on this machine is brought up to
    date too (it is the last-good fallback).
    """
    store = open_store(settings)
    profiles = outcome.profiles(settings.profile_photos, store.stable_url)
    inputs = outcome.bundle_inputs(profiles, model)
    targets: list[tuple[ObjectStore, str]] = [
        (open_store(settings.bundle_dir), ""),
        (store, settings.bundle_prefix),
    ]
    if (settings.login_cache_dir / bundle.LATEST).is_file():
        targets.append((open_store(settings.login_cache_dir), ""))
    manifest = bundle.published_everywhere(targets, inputs)
    published: list[str] = []
    pruned: list[str] = []
    if manifest is None:
        stored = open_catalog(settings).load_encodings(outcome.encoded_shas)
        data, manifest = bundle.build_bundle(
            outcome.bundle_encodings(stored), profiles, created_at, model, extra={"inputs": inputs}
        )
        published, pruned = bundle.publish_to(targets, data, manifest)
    described = bundle.describe(manifest, settings.bundle_dir, store, settings.bundle_prefix)
    return described | {"published_to": published, "pruned": len(pruned)}
