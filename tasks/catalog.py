"""Catalog stage: read what earlier runs recorded, and upsert user documents and encodings (MongoDB)."""

from __future__ import annotations

from prefect import task

from facelogin.adapters import connect
from facelogin.adapters.catalog import RecordedUsers
from facelogin.adapters.connect import open_catalog, open_store
from facelogin.settings import Settings
from facelogin.sync.outcome import Outcome
from tasks.policy import MONGO_RETRIES


@task(task_run_name="check-catalog", **MONGO_RETRIES)
def check_catalog(settings: Settings) -> str:
    """Check MongoDB answers before any work: refused or unknown hosts fail at once, naming the setting."""
    return connect.check_catalog(settings)


@task(task_run_name="load-catalog", **MONGO_RETRIES)
def load_catalog(settings: Settings, prepare: bool = True) -> RecordedUsers:
    """Read every user's recorded photos (content hash, status, thumbnail keys) and document digest;
    `prepare` makes indexes."""
    catalog = open_catalog(settings)
    if prepare:
        catalog.ensure_indexes()
    return catalog.load_users()


@task(task_run_name="load-encodings", **MONGO_RETRIES)
def load_encodings(settings: Settings, shas: list[str]) -> dict[str, list[float]]:
    """Fetch stored encodings by photo content hash."""
    return open_catalog(settings).load_encodings(shas)


@task(task_run_name="save-encodings", **MONGO_RETRIES)
def save_encodings(settings: Settings, encodings: dict[str, list[float]], model: dict[str, str]) -> int:
    """Store new encodings keyed by photo content hash, so no photo is ever encoded twice."""
    return open_catalog(settings).save_encodings(encodings, model)


@task(task_run_name="upsert-users", **MONGO_RETRIES)
def upsert_users(settings: Settings, outcome: Outcome, digests: dict[str, str | None] | None = None) -> int:
    """Upsert one document per user (profile image, photos and their status) in one bulk write;
    a user whose document digest is in `digests` (as read at the start of the run) is not written."""
    docs = outcome.documents(settings.profile_photos, open_store(settings).stable_url)
    return open_catalog(settings).upsert_users(docs, stored=digests)


@task(task_run_name="remove-users", **MONGO_RETRIES)
def remove_users(settings: Settings, usernames: list[str], keep_shas: list[str]) -> int:
    """Remove users whose folder is gone, and encodings no enrolled photo uses any more."""
    catalog = open_catalog(settings)
    removed = catalog.remove_users(usernames)
    catalog.remove_encodings_except(keep_shas)
    return removed
