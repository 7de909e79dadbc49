"""The sync flow end to end, under a real Prefect API, against moto S3 and nx-27017 on loopback."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pymongo import MongoClient

from facelogin.bundle import read_bundle
from facelogin.naming import thumb_key
from facelogin.sync.outcome import SyncError
from flows.sync_faces import sync_faces
from tests.conftest import s3_for
from tests.servers import FaultyProxy

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

SAMPLE_USERS = {"Alex_Lacamoire", "Biden", "Kit_Harington", "Lin_Manuel_Miranda", "Obama", "Rose_Leslie"}


@pytest.fixture
def users(sync_env: dict[str, str]) -> Iterator[Any]:
    """The users collection the flow writes to."""
    client: MongoClient[dict[str, Any]] = MongoClient(sync_env["FACELOGIN_MONGODB_URI"])
    with client:
        yield client[sync_env["FACELOGIN_DATABASE"]]["users"]


def bucket_keys(env: dict[str, str], prefix: str = "") -> set[str]:
    s3 = s3_for(env["AWS_ENDPOINT_URL"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=env["FACELOGIN_BUCKET"], Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def test_sample_tree_syncs_every_user(images: Path, sync_env: dict[str, str], users: Any) -> None:
    summary = sync_faces(images=str(images))

    assert (summary["users"], summary["photos"], summary["encoded"]) == (6, 12, 12)
    assert summary["rejected"] == [] and summary["errors"] == []
    assert summary["uploaded"] == 24  # 12 photos x (128, 256)

    docs = list(users.find({}, {"_id": 0}))
    assert {d["username"] for d in docs} == SAMPLE_USERS
    obama = next(d for d in docs if d["username"] == "Obama")
    assert obama["profile_image"]["photo"] == "obama_01.jpg"
    assert obama["profile_image"]["keys"] == {
        "128": "thumbs/128/Obama/obama_01.jpg",
        "256": "thumbs/256/Obama/obama_01.jpg",
    }
    assert obama["profile_image"]["urls"] is None  # presigned mode: links are made when read
    assert [p["status"] for p in obama["photos"]] == ["encoded"] * 3

    keys = bucket_keys(sync_env, "thumbs/")
    # A JPEG keeps its name; any other photo gets .jpg added, so face.jpg and face.png never collide.
    expected = {
        thumb_key("thumbs", size, p.parent.name, p.name) for p in images.glob("*/*") for size in (128, 256)
    }
    assert keys == expected and "thumbs/256/Alex_Lacamoire/alex_lacamoire_02.png.jpg" in keys
    s3 = s3_for(sync_env["AWS_ENDPOINT_URL"])
    obj = s3.get_object(
        Bucket=sync_env["FACELOGIN_BUCKET"], Key="thumbs/256/Alex_Lacamoire/alex_lacamoire_02.png.jpg"
    )
    assert obj["ContentType"] == "image/jpeg"
    assert "max-age" in obj["CacheControl"]
    thumb = Image.open(io.BytesIO(obj["Body"].read()))
    assert (thumb.format, thumb.mode, max(thumb.size)) == ("JPEG", "RGB", 256)
    assert not thumb.getexif() and "exif" not in thumb.info and "icc_profile" not in thumb.info

    bundle = read_bundle(Path(sync_env["FACELOGIN_STATE_DIR"]) / "bundle")
    assert sorted(bundle.usernames) == sorted(SAMPLE_USERS)
    assert bundle.encodings.shape == (12, 128)
    assert bundle.version == summary["bundle"]["version"]
    assert f"encodings/bundle-{bundle.version}.npz" in bucket_keys(sync_env, "encodings/")
    assert bundle.profile("Obama")["keys"]["256"] == "thumbs/256/Obama/obama_01.jpg"


def test_second_run_does_nothing_and_a_changed_photo_is_redone(
    images: Path, sync_env: dict[str, str], users: Any
) -> None:
    first = sync_faces(images=str(images))
    second = sync_faces(images=str(images))

    assert (second["encoded"], second["uploaded"], second["unchanged"]) == (0, 0, 12)
    assert second["bundle"]["version"] == first["bundle"]["version"]
    assert second["bundle"]["published_to"] == []
    assert users.count_documents({}) == 6
    assert users.database["faces"].count_documents({}) == 12

    photo = images / "Obama" / "obama_02.jpg"
    Image.open(photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photo, quality=90)
    third = sync_faces(images=str(images))

    assert (third["encoded"], third["uploaded"], third["unchanged"]) == (1, 2, 11)
    assert third["bundle"]["version"] != first["bundle"]["version"]
    assert users.count_documents({}) == 6
    obama = users.find_one({"username": "Obama"})
    assert obama is not None
    record = next(p for p in obama["photos"] if p["filename"] == "obama_02.jpg")
    assert record["status"] == "encoded"
    assert users.database["faces"].count_documents({}) == 12  # the old encoding is dropped


def test_removed_photos_and_users_are_removed_everywhere(
    images: Path, sync_env: dict[str, str], users: Any
) -> None:
    sync_faces(images=str(images))
    shutil.rmtree(images / "Biden")
    (images / "Obama" / "obama_03.jpg").unlink()

    summary = sync_faces(images=str(images))

    assert summary["removed_users"] == 1
    assert summary["deleted_objects"] == 6  # Biden's 2 photos and obama_03, two sizes each
    assert users.find_one({"username": "Biden"}) is None
    keys = bucket_keys(sync_env, "thumbs/")
    assert not any("/Biden/" in k or "obama_03" in k for k in keys)
    bundle = read_bundle(Path(sync_env["FACELOGIN_STATE_DIR"]) / "bundle")
    assert "Biden" not in bundle.usernames and len(bundle.encodings) == 9


def test_bad_photos_are_rejected_with_reasons_and_others_sync(
    images: Path, faces: Path, sync_env: dict[str, str], users: Any
) -> None:
    bad = images / "Mallory"
    bad.mkdir()
    good_jpeg = (images / "Obama" / "obama_01.jpg").read_bytes()
    (bad / "corrupt.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 3])
    (bad / "garbage.jpg").write_bytes(b"this is not an image at all")
    (bad / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (400, 300), (120, 160, 200)).save(bad / "no_face.png")
    shutil.copy(faces / "groups" / "kit_with_rose.jpg", bad / "group.jpg")

    summary = sync_faces(images=str(images))

    rows = {row["user"]: row for row in summary["per_user"]}
    assert (rows["Mallory"]["photos"], rows["Mallory"]["rejected"], rows["Mallory"]["encoded"]) == (5, 5, 0)
    assert (rows["Obama"]["encoded"], rows["Obama"]["uploaded"], rows["Obama"]["rejected"]) == (3, 6, 0)
    reasons = {Path(r["file"]).name: r["reason"] for r in summary["rejected"]}
    assert set(reasons) == {"corrupt.jpg", "garbage.jpg", "empty.jpg", "no_face.png", "group.jpg"}
    assert "cannot decode" in reasons["corrupt.jpg"] or "truncated" in reasons["corrupt.jpg"]
    assert "not a readable image" in reasons["garbage.jpg"]
    assert "empty file" in reasons["empty.jpg"]
    assert reasons["no_face.png"] == "no face found"
    assert reasons["group.jpg"].startswith("2 faces found")
    assert summary["encoded"] == 12 and summary["errors"] == []

    assert users.count_documents({}) == 7
    mallory = users.find_one({"username": "Mallory"})
    assert mallory is not None and mallory["profile_image"] is None
    assert {p["status"] for p in mallory["photos"]} == {"rejected"}
    bundle = read_bundle(Path(sync_env["FACELOGIN_STATE_DIR"]) / "bundle")
    assert "Mallory" not in bundle.usernames and len(bundle.usernames) == 6

    again = sync_faces(images=str(images))  # rejected photos are not decoded again, still reported
    assert again["encoded"] == 0 and len(again["rejected"]) == 5


def test_transient_s3_errors_are_retried(
    images: Path, sync_env: dict[str, str], faulty_s3: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    faulty_s3.fail_first = 5
    monkeypatch.setenv("AWS_ENDPOINT_URL", faulty_s3.url)

    summary = sync_faces(images=str(images))

    assert faulty_s3.failures() == 5
    assert summary["uploaded"] == 24 and summary["errors"] == []
    assert len(bucket_keys(sync_env, "thumbs/")) == 24


def test_missing_bucket_fails_at_once_with_a_clear_error(
    images: Path, sync_env: dict[str, str], faulty_s3: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", faulty_s3.url)
    monkeypatch.setenv("FACELOGIN_BUCKET", "no-such-bucket-here")

    with pytest.raises(SyncError, match="bucket 'no-such-bucket-here' does not exist") as info:
        sync_faces(images=str(images))
    assert info.value.changed is False and info.value.summary is None  # nothing was done

    heads = [s for s in faulty_s3.seen if s[0] == "HEAD"]
    assert len(heads) == 1  # permanent: not retried
    assert not any(m == "PUT" for m, *_ in faulty_s3.seen)


def test_upload_that_keeps_failing_is_reported_and_retried_next_run(
    images: Path, sync_env: dict[str, str], faulty_s3: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", faulty_s3.url)
    monkeypatch.setenv("FACELOGIN_TASK_RETRIES", "1")
    shutil.rmtree(images / "Obama")
    shutil.rmtree(images / "Biden")
    faulty_s3.fail_first, faulty_s3.fail_paths = 1000, "/thumbs/"

    with pytest.raises(SyncError, match="upload failed") as info:
        sync_faces(images=str(images))
    assert len(info.value.summary["errors"]) == 7

    faulty_s3.fail_first = 0
    summary = sync_faces(images=str(images))
    assert summary["uploaded"] == 14 and summary["encoded"] == 0


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def test_presigned_urls_serve_thumbnails_and_plain_urls_do_not(
    images: Path, sync_env: dict[str, str], users: Any
) -> None:
    from facelogin.adapters.connect import open_store
    from facelogin.settings import Settings

    sync_faces(images=str(images))
    doc = users.find_one({"username": "Rose_Leslie"})
    assert doc is not None
    key = doc["profile_image"]["keys"]["128"]
    store = open_store(Settings())

    status, body = _get(str(store.url(key)))
    assert status == 200
    assert Image.open(io.BytesIO(body)).size[0] <= 128

    plain = f"{sync_env['AWS_ENDPOINT_URL']}/{sync_env['FACELOGIN_BUCKET']}/{key}"
    assert _get(plain)[0] == 403


@pytest.mark.parametrize("mode", ["presigned", "base-url", "public-acl"])
def test_only_thumbnails_can_ever_be_public(
    images: Path, sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("FACELOGIN_URL_MODE", mode)
    monkeypatch.setenv("FACELOGIN_BASE_URL", "https://cdn.example.org/faces")
    sync_faces(images=str(images))

    keys = bucket_keys(sync_env)
    assert any(k.startswith("encodings/bundle-") for k in keys) and "encodings/latest.json" in keys
    for key in keys:  # fetched anonymously, as anyone on the internet would
        status, _ = _get(f"{sync_env['AWS_ENDPOINT_URL']}/{sync_env['FACELOGIN_BUCKET']}/{key}")
        public = mode == "public-acl" and key.startswith("thumbs/")
        assert status == (200 if public else 403), (key, status)


def test_a_nightly_run_with_nothing_new_reads_writes_and_publishes_nothing(
    images: Path, sync_env: dict[str, str], users: Any
) -> None:
    first = sync_faces(images=str(images))
    assert first["bytes_read"] == sum(p.stat().st_size for p in images.glob("*/*"))

    quiet = sync_faces(images=str(images))
    assert (quiet["bytes_read"], quiet["encoded"], quiet["uploaded"], quiet["upserted"]) == (0, 0, 0, 0)
    assert quiet["bundle"]["published_to"] == [] and quiet["bundle"]["version"] == first["bundle"]["version"]

    # Touched, not changed: read again (its stamp changed), found the same, nothing else done.
    touched = images / "Biden" / "biden_01.jpg"
    os.utime(touched, ns=(time.time_ns(), time.time_ns()))
    again = sync_faces(images=str(images))
    assert again["bytes_read"] == touched.stat().st_size and (again["encoded"], again["upserted"]) == (0, 0)

    # Changed in place with its size and mtime put back: the ctime gives it away.
    photo = images / "Obama" / "obama_02.jpg"
    before = photo.stat()
    data = bytearray(photo.read_bytes())
    data[-3] ^= 0xFF  # a byte of the last scan: a different file of the same size
    photo.write_bytes(bytes(data))
    os.utime(photo, ns=(before.st_atime_ns, before.st_mtime_ns))
    changed = sync_faces(images=str(images))
    assert changed["encoded"] == 1 and changed["upserted"] == 1
    obama = users.find_one({"username": "Obama"})
    record = next(p for p in obama["photos"] if p["filename"] == "obama_02.jpg")
    assert record["sha256"] == hashlib.sha256(bytes(data)).hexdigest()


def test_the_report_artifacts_are_kept_only_where_the_api_outlives_the_run(
    images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the temporary API of `facelogin sync` nobody could read them: no artifacts are made."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from facelogin.settings import TEMPORARY_API_ENV
    from tasks.report import REPORT_KEY, SUMMARY_KEY

    def artifact_keys(state: Any) -> set[str]:
        run_id = state.state_details.flow_run_id
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
        return {a.key for a in found if a.key}

    assert artifact_keys(sync_faces(images=str(images), return_state=True)) == {REPORT_KEY, SUMMARY_KEY}
    monkeypatch.setenv(TEMPORARY_API_ENV, "1")
    state = sync_faces(images=str(images), return_state=True)
    assert state.is_completed() and artifact_keys(state) == set()
