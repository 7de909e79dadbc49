"""Each task's body through `.fn()`, without the engine: one core call each, against real servers."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pymongo import MongoClient

from facelogin.adapters.stores import StoreError
from facelogin.bundle import read_bundle
from facelogin.faces import ENCODED, REJECTED, FaceResult
from facelogin.settings import Settings
from facelogin.sync.outcome import collect_outcome
from facelogin.sync.plan import plan_sync
from facelogin.sync.stages import Jobs, collect_training
from tasks.bundle import publish_bundle
from tasks.catalog import load_catalog, load_encodings, remove_users, save_encodings, upsert_users
from tasks.discover import discover_photos
from tasks.encode import encode_faces
from tasks.thumbnail import make_thumbnails
from tasks.upload import check_store, delete_objects, upload_thumbnails
from tests.conftest import s3_for

MODEL = {"detector": "hog"}


@pytest.fixture
def settings(sync_env: dict[str, str]) -> Settings:
    return Settings()


def bucket_keys(env: dict[str, str]) -> set[str]:
    listed = s3_for(env["AWS_ENDPOINT_URL"]).list_objects_v2(Bucket=env["FACELOGIN_BUCKET"])
    return {o["Key"] for o in listed.get("Contents", [])}


def test_discover_photos(images: Path) -> None:
    found = discover_photos.fn(str(images))
    assert len(found.users) == 6 and len(found.photos) == 12 and found.rejected == []


def test_encode_faces_here_and_in_worker_processes(faces: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = [str(faces / "images/Obama/obama_01.jpg"), str(faces / "groups/two_people.jpg")]
    here = encode_faces.fn(paths, "x")
    with (
        ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool,
        caplog.at_level("DEBUG", "facelogin.progress"),
    ):
        there = encode_faces.fn(paths, "x", processes=pool)
    assert [(r.status, staged) for r, staged in here] == [(ENCODED, None), (REJECTED, None)]
    assert here == there
    # Through the pool, photo by photo: the progress bar moves with each.
    told = [(r.stage, r.done) for r in caplog.records if r.name == "facelogin.progress"]  # type: ignore[attr-defined]
    assert told == [("photos encoded", 1), ("photos encoded", 1)]


def test_the_encoders_stage_an_accepted_photos_thumbnails_from_the_same_decode(
    faces: Path, tmp_path: Path
) -> None:
    """Through the pool, with keys: the accepted photo's thumbnails under every name its content has,
    none for the group photo the check rejects; a staging area that cannot be written is an error
    returned with the (still accepted) face, not a verdict on the photo."""
    obama, group = str(faces / "images/Obama/obama_01.jpg"), str(faces / "groups/two_people.jpg")
    keys = {
        obama: [{"128": "t/128/Obama/o.jpg", "256": "t/256/Obama/o.jpg"}, {"128": "t/128/Barack/o.jpg"}],
        group: [{"128": "t/128/Two/g.jpg"}],
    }
    staging = tmp_path / "staging"
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        both = encode_faces.fn([obama, group], "x", processes=pool, thumbnails=keys, staging=str(staging))
        blocked = tmp_path / "blocked"
        blocked.write_bytes(b"a file where the staging directory should be")
        again = encode_faces.fn(
            [obama], "y", processes=pool, thumbnails={obama: keys[obama]}, staging=str(blocked)
        )
    (face, staged), (rejected, none) = both
    [(still, failure)] = again

    assert (face.status, staged, rejected.status, none) == (ENCODED, None, REJECTED, None)
    made = sorted(str(p.relative_to(staging)) for p in staging.rglob("*.jpg"))
    assert made == ["t/128/Barack/o.jpg", "t/128/Obama/o.jpg", "t/256/Obama/o.jpg"]
    for key, size in [("t/256/Obama/o.jpg", 256), ("t/128/Barack/o.jpg", 128)]:
        with Image.open(staging / key) as thumb:
            assert (thumb.format, max(thumb.size), thumb.info.get("exif")) == ("JPEG", size, None)
    assert (staging / "t/128/Obama/o.jpg").read_bytes() == (staging / "t/128/Barack/o.jpg").read_bytes()
    assert still == face and failure is not None and failure.startswith("thumbnail failed:")


@pytest.mark.parametrize("sizes", [[128, 256], [64, 1024]], ids=["from-the-detection-copy", "larger"])
def test_the_encoders_and_the_thumbnail_tasks_stage_the_same_bytes(
    faces: Path, tmp_path: Path, sizes: list[int]
) -> None:
    """Whichever path makes a photo's thumbnails (an encoder, from the copy it detects on; a thumbnail
    task, for a photo whose encoding is stored: a renamed folder, a re-run after a crash, Dask),
    the bytes are the same, for every sample photo (JPEG and PNG, large and small)."""
    photos = sorted(str(p) for p in (faces / "images").glob("*/*"))
    keys = {p: {str(s): f"t/{s}/{Path(p).parent.name}/{Path(p).name}.jpg" for s in sizes} for p in photos}
    encoded = encode_faces.fn(photos, "x", thumbnails={p: [k] for p, k in keys.items()},
                              staging=str(tmp_path / "a"))  # fmt: skip
    assert all(r.status == ENCODED and staged is None for r, staged in encoded)
    assert set(make_thumbnails.fn("all", keys, str(tmp_path / "b"), 800).values()) == {None}
    for key_set in keys.values():
        for key in key_set.values():
            assert (tmp_path / "a" / key).read_bytes() == (tmp_path / "b" / key).read_bytes(), key


def test_make_thumbnails_stages_each_size_and_names_undecodable_photos(faces: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    photo = str(faces / "images/Biden/biden_01.jpg")
    jobs = {photo: {"128": "t/128/B/b.jpg", "256": "t/256/B/b.jpg"}, str(bad): {"128": "t/128/B/x.jpg"}}

    problems = make_thumbnails.fn("Biden", jobs, str(tmp_path / "staging"), 800)

    assert problems[photo] is None and "not a readable image" in str(problems[str(bad)])
    with Image.open(tmp_path / "staging/t/256/B/b.jpg") as thumb:
        assert (thumb.format, max(thumb.size)) == ("JPEG", 256)
    assert not (tmp_path / "staging/t/128/B/x.jpg").exists()


def test_check_upload_and_delete(settings: Settings, sync_env: dict[str, str], tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    (staging / "thumbs/128/Ann").mkdir(parents=True)
    (staging / "thumbs/128/Ann/a.jpg").write_bytes(b"jpeg")

    assert check_store.fn(settings) == f"s3://{sync_env['FACELOGIN_BUCKET']}"
    assert upload_thumbnails.fn(settings, "Ann", ["thumbs/128/Ann/a.jpg"], str(staging)) == 1
    assert bucket_keys(sync_env) == {"thumbs/128/Ann/a.jpg"}
    assert not (staging / "thumbs/128/Ann/a.jpg").exists()  # staged files are gone once uploaded
    assert delete_objects.fn(settings, ["thumbs/128/Ann/a.jpg"]) == 1
    assert bucket_keys(sync_env) == set()
    with pytest.raises(StoreError, match="does not exist"):
        check_store.fn(settings.model_copy(update={"bucket": "no-such-bucket"}))


def test_an_upload_task_sends_its_objects_over_its_threads_and_leaves_what_failed_staged(
    settings: Settings, sync_env: dict[str, str], tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    keys = [f"thumbs/128/Ann/a{i:02d}.jpg" for i in range(40)]
    for key in keys:
        (staging / key).parent.mkdir(parents=True, exist_ok=True)
        (staging / key).write_bytes(b"jpeg " + key.encode())

    with pytest.raises(StoreError):  # a permanent fault: the first failure ends the task
        upload_thumbnails.fn(
            settings.model_copy(update={"bucket": "no-such-bucket"}), "Ann", keys, str(staging), 4
        )
    assert all((staging / key).exists() for key in keys)  # nothing stored, nothing dropped

    assert upload_thumbnails.fn(settings, "Ann", keys, str(staging), threads=4) == 40
    assert bucket_keys(sync_env) == set(keys) and not list(staging.rglob("*.jpg"))
    assert upload_thumbnails.fn(settings, "Ann", keys, str(staging), threads=4) == 0  # a retry: nothing left


def test_upload_task_runs_are_named_for_the_users_they_carry() -> None:
    from tasks.upload import _label

    every = [("Obama", f"o{i}") for i in range(5)] + [("Biden", "b"), ("Ann", "a")] + [("Zed", "z")] * 6
    assert [_label(every, i, 4) for i in range(0, len(every), 4)] == ["Obama", "Obama-2+3", "Zed-2", "Zed-3"]
    assert [_label(every, i, 13) for i in range(0, len(every), 13)] == ["Obama+3"]


def test_catalog_tasks_round_trip(settings: Settings, images: Path, sync_env: dict[str, str]) -> None:
    found = discover_photos.fn(str(images))
    plan = plan_sync(found.users, {}, settings.thumb_sizes, settings.thumbs_prefix)
    jobs = Jobs.for_plan(plan, settings.thumb_sizes, settings.thumbs_prefix)
    trained = collect_training([], {p.sha256: FaceResult(ENCODED, encoding=[0.5] * 128) for p in plan.todo})
    thumbnailed = jobs.thumbnailed([(list(found.users), {}, None)], trained, None)
    uploaded = jobs.uploaded(thumbnailed, {})
    outcome = collect_outcome(plan, found.users, {}, trained, thumbnailed, None, uploaded)

    assert save_encodings.fn(settings, dict(trained.encodings), MODEL) == 12
    assert set(load_encodings.fn(settings, [p.sha256 for p in found.photos])) == {
        p.sha256 for p in found.photos
    }
    assert upsert_users.fn(settings, outcome) == 6
    loaded = load_catalog.fn(settings)
    recorded = loaded.photos
    assert upsert_users.fn(settings, outcome, loaded.digests) == 0  # unchanged: no write
    assert upsert_users.fn(settings, outcome, {}) == 6  # digests not known: written again
    assert set(recorded) == set(found.users) and set(recorded["Obama"]) == {"obama_01.jpg", "obama_02.jpg",
                                                                           "obama_03.jpg"}  # fmt: skip

    keep = [p.sha256 for p in found.users["Biden"]]
    assert remove_users.fn(settings, ["Obama"], keep) == 1
    assert set(load_catalog.fn(settings).photos) == set(found.users) - {"Obama"}
    assert set(load_encodings.fn(settings, [p.sha256 for p in found.photos])) == set(keep)
    with MongoClient(sync_env["FACELOGIN_MONGODB_URI"]) as mongo:
        doc: Any = mongo[sync_env["FACELOGIN_DATABASE"]]["users"].find_one({"username": "Biden"})
    assert doc["profile_image"]["keys"]["256"] == "thumbs/256/Biden/biden_01.jpg"


def test_publish_bundle_writes_locally_and_to_the_store_once(
    settings: Settings, images: Path, sync_env: dict[str, str]
) -> None:
    found = discover_photos.fn(str(images))
    plan = plan_sync(found.users, {}, settings.thumb_sizes, settings.thumbs_prefix)
    encodings = {p.sha256: [i / 1000] * 128 for i, p in enumerate(plan.todo)}
    trained = collect_training([], {sha: FaceResult(ENCODED, encoding=e) for sha, e in encodings.items()})
    outcome = collect_outcome(plan, found.users, {}, trained)
    save_encodings.fn(settings, encodings, MODEL)

    first = publish_bundle.fn(settings, outcome, "2026-01-01T00:00:00+00:00", MODEL)
    with MongoClient(sync_env["FACELOGIN_MONGODB_URI"]) as mongo:  # unchanged inputs: not even read
        mongo[sync_env["FACELOGIN_DATABASE"]]["faces"].delete_many({})
    again = publish_bundle.fn(settings, outcome, "2026-01-02T00:00:00+00:00", MODEL)

    assert (first["users"], first["encodings"]) == (6, 12) and len(first["published_to"]) == 2
    assert again["published_to"] == [] and again["version"] == first["version"]
    assert read_bundle(settings.bundle_dir).version == first["version"]
    assert f"encodings/bundle-{first['version']}.npz" in bucket_keys(sync_env)
