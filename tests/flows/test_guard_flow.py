"""A sync never loses users on a mistake, and forgets removed users completely (moto, nx-27017, Prefect)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from facelogin.bundle import read_bundle
from facelogin.sync.guard import SyncRefused
from flows.sync_faces import sync_faces
from tests.conftest import s3_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


def snapshot(env: dict[str, str]) -> dict[str, Any]:
    """Everything a sync writes: user documents, encodings, objects (with content), local bundle files."""
    with MongoClient(env["FACELOGIN_MONGODB_URI"]) as mongo:
        db = mongo[env["FACELOGIN_DATABASE"]]
        users = sorted(
            (d["username"], d["photos"], d["profile_image"]) for d in db["users"].find({}, {"_id": 0})
        )
        faces = sorted(d["_id"] for d in db["faces"].find({}, {"_id": 1}))
    s3 = s3_for(env["AWS_ENDPOINT_URL"])
    listed = s3.list_objects_v2(Bucket=env["FACELOGIN_BUCKET"]).get("Contents", [])
    objects = {o["Key"]: o["ETag"] for o in listed}
    local = Path(env["FACELOGIN_STATE_DIR"]) / "bundle"
    present = sorted(local.iterdir()) if local.is_dir() else []
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in present}
    return {"users": users, "faces": faces, "objects": objects, "bundle": files}


@pytest.fixture
def synced(images: Path, sync_env: dict[str, str]) -> dict[str, Any]:
    summary = sync_faces(images=str(images))
    assert summary["users"] == 6 and summary["errors"] == []
    return snapshot(sync_env)


@pytest.mark.parametrize("root", ["empty", "missing", "one-users-folder"])
def test_a_root_that_vanished_changes_nothing(
    root: str, images: Path, sync_env: dict[str, str], synced: dict[str, Any], tmp_path: Path
) -> None:
    target = {"empty": tmp_path / "mnt", "missing": tmp_path / "gone", "one-users-folder": images / "Obama"}[
        root
    ]
    if root == "empty":
        target.mkdir()  # what an unmounted share looks like

    with pytest.raises(SyncRefused, match=str(target)):
        sync_faces(images=str(target))

    assert snapshot(sync_env) == synced


def test_a_mass_removal_stops_until_confirmed_and_then_forgets_completely(
    images: Path, sync_env: dict[str, str], synced: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    gone = ["Biden", "Kit_Harington", "Rose_Leslie"]
    for user in gone:
        shutil.rmtree(images / user)

    caplog.clear()
    with pytest.raises(SyncRefused, match="remove 3 of 6 users"):
        sync_faces(images=str(images))
    assert snapshot(sync_env) == synced
    # The run's log says why in one line, with no traceback (an expected outcome, not a crash).
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage()[:34] for r in errors] == ["this run would remove 3 of 6 users"]
    assert not any(r.exc_info for r in caplog.records)

    plan = sync_faces(images=str(images), dry_run=True)["plan"]
    assert plan["users_removed"] == gone and plan["objects_to_delete"] == 12  # 6 photos, 2 sizes
    assert snapshot(sync_env) == synced  # a dry run changes nothing either

    summary = sync_faces(images=str(images), allow_removals=3)
    assert summary["removed_users"] == 3 and summary["deleted_objects"] == 12
    after = snapshot(sync_env)
    assert [u[0] for u in after["users"]] == ["Alex_Lacamoire", "Lin_Manuel_Miranda", "Obama"]
    assert not any(f"/{user}/" in key for key in after["objects"] for user in gone)
    # No bundle version still holding their encodings is kept, locally or in the bucket.
    assert sorted(k for k in after["bundle"] if k.startswith("bundle-")) == [
        f"bundle-{summary['bundle']['version']}.json", f"bundle-{summary['bundle']['version']}.npz"
    ]  # fmt: skip
    assert sorted(k for k in after["objects"] if k.startswith("encodings/")) == [
        f"encodings/bundle-{summary['bundle']['version']}.json",
        f"encodings/bundle-{summary['bundle']['version']}.npz",
        "encodings/latest.json",
    ]
    assert set(read_bundle(Path(sync_env["FACELOGIN_STATE_DIR"]) / "bundle").usernames).isdisjoint(gone)
    assert len(after["faces"]) == 6  # Alex 2, Lin 1, Obama 3: the removed users' encodings are gone


def test_a_dry_run_says_what_a_first_sync_would_do_and_writes_nothing(
    images: Path, sync_env: dict[str, str]
) -> None:
    before = snapshot(sync_env)

    summary = sync_faces(images=str(images), dry_run=True)

    assert summary["plan"]["users_added"] == sorted(p.name for p in images.iterdir())
    assert (summary["plan"]["photos_to_encode"], summary["plan"]["objects_to_upload"]) == (12, 24)
    assert summary["refused"] is None
    assert snapshot(sync_env) == before
    assert not (Path(sync_env["FACELOGIN_STATE_DIR"]) / "staging").exists()
