"""Fixtures of the CLI tests: a new user's environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from facelogin.adapters.catalog import Catalog
from facelogin.adapters.connect import open_store
from facelogin.adapters.mongo import mongo_client
from facelogin.settings import Settings
from facelogin.sync.outcome import user_document
from tests.servers import seed_prefect_home


@pytest.fixture
def first_run_env(tmp_path: Path) -> dict[str, str]:
    """A new user's environment on a new machine: no FACELOGIN_*, AWS_* or Prefect settings, and no
    Prefect database yet (the first command creates it)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("FACELOGIN_", "AWS_", "PREFECT_"))}
    return keep | {
        "HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


@pytest.fixture
def clean_env(first_run_env: dict[str, str], migrated_prefect_db: Path) -> dict[str, str]:
    """A new user's environment, no FACELOGIN_*, AWS_* or Prefect API settings, on a machine whose
    Prefect database exists (created by an earlier command; first_run_env is the machine before)."""
    seed_prefect_home(Path(first_run_env["PREFECT_HOME"]), migrated_prefect_db)
    return first_run_env


@pytest.fixture
def served_env(clean_env: dict[str, str], prefect_api: str) -> dict[str, str]:
    """clean_env on a machine where a Prefect server runs (the one the flow tests use, one per xdist
    worker): each command talks to it instead of starting a temporary API of its own, ~4 s of CPU a
    command. For the tests about what a sync does with S3, MongoDB and the photos; the first run on
    embedded defaults, its temporary API included, is what the tests that take clean_env are about."""
    return clean_env | {"PREFECT_API_URL": prefect_api}


@pytest.fixture
def enrolled(sync_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Two users recorded in MongoDB with thumbnails in the bucket, a third only on disk, one gone."""
    images = tmp_path / "images"
    for user in ("Ann", "Bob", "Cy"):
        (images / user).mkdir(parents=True)
        Image.new("RGB", (64, 64), (200, 120, 90)).save(images / user / f"{user.lower()}_01.jpg")
    monkeypatch.setenv("FACELOGIN_IMAGES", str(images))
    settings = Settings()
    store = open_store(settings)
    docs = []
    for user in ("Ann", "Bob", "Dee"):
        keys = {str(s): f"thumbs/{s}/{user}/{user.lower()}_01.jpg" for s in (128, 256)}
        for key in keys.values():
            store.put(key, b"\xff\xd8\xff" + user.encode(), "image/jpeg", "private")
        record = {"filename": f"{user.lower()}_01.jpg", "sha256": user, "bytes": 1, "status": "encoded",
                  "reason": None, "thumbs": keys}  # fmt: skip
        rejected = {**record, "filename": f"{user.lower()}_02.jpg", "status": "rejected", "thumbs": {}}
        docs.append(user_document(user, [record, rejected], None, {}))
    catalog = Catalog(mongo_client(sync_env["FACELOGIN_MONGODB_URI"])[settings.database])
    catalog.upsert_users(docs)
    return {"images": images, "bucket": sync_env["FACELOGIN_BUCKET"]}
