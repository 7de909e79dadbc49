"""One contract for every object store: the local directory, and S3 on two real servers on loopback:
moto (fast, lenient) and SeaweedFS (SigV4 checked, presigned URLs verified, private by default)."""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import pytest

from facelogin.adapters.stores import DirStore, MissingObject, ObjectStore, StoreError
from facelogin.adapters.stores.s3 import S3Store
from tests.conftest import s3_for
from tests.servers import MotoServer, SeaweedServer


@pytest.fixture(params=["dir", "moto", "seaweed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "dir":
        return DirStore(tmp_path / "objects")
    if request.param == "seaweed":
        seaweed: SeaweedServer = request.getfixturevalue("seaweed")
        client = s3_for(seaweed.url)
        name = f"faces-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=name)
        return S3Store(client, name)
    moto: MotoServer = request.getfixturevalue("moto")
    return S3Store(s3_for(moto.url), request.getfixturevalue("bucket"))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    store.check()
    store.put("thumbs/128/Ann/a.jpg", b"\xff\xd8jpeg", "image/jpeg", "private, max-age=60")
    assert store.get("thumbs/128/Ann/a.jpg") == b"\xff\xd8jpeg"


def test_put_replaces_what_was_there(store: ObjectStore) -> None:
    store.check()
    store.put("encodings/latest.json", b"old", "application/json", "no-cache")
    store.put("encodings/latest.json", b"new", "application/json", "no-cache")
    assert store.get("encodings/latest.json") == b"new"


def test_a_missing_key_is_missing_object(store: ObjectStore) -> None:
    store.check()
    with pytest.raises(MissingObject, match=r"nothing/here\.jpg"):
        store.get("nothing/here.jpg")
    with pytest.raises(StoreError):  # a permanent error: retrying does not make it appear
        store.get("nothing/here.jpg")


def test_delete_removes_and_ignores_what_is_not_there(store: ObjectStore) -> None:
    store.check()
    for key in ("a/1.jpg", "a/2.jpg", "b/3.jpg"):
        store.put(key, key.encode(), "image/jpeg", "")
    store.delete(["a/1.jpg", "b/3.jpg", "never/was.jpg"])
    assert store.get("a/2.jpg") == b"a/2.jpg"
    for gone in ("a/1.jpg", "b/3.jpg"):
        with pytest.raises(MissingObject):
            store.get(gone)


def test_url_serves_the_object_now(store: ObjectStore) -> None:
    store.check()
    store.put("thumbs/256/Ann/a.jpg", b"pixels", "image/jpeg", "")
    url = store.url("thumbs/256/Ann/a.jpg")
    assert url is not None and fetch(url) == b"pixels"


def test_put_file_stores_a_local_file_and_consumes_it(store: ObjectStore, tmp_path: Path) -> None:
    store.check()
    staged = tmp_path / "staged.jpg"
    staged.write_bytes(b"thumbnail")
    store.put_file("thumbs/128/Ann/a.jpg", staged, "image/jpeg", "private")
    assert store.get("thumbs/128/Ann/a.jpg") == b"thumbnail" and not staged.exists()


@pytest.mark.parametrize("threads", [1, 8])
def test_put_files_stores_many_files_consumes_them_and_reports_each(
    store: ObjectStore, tmp_path: Path, threads: int
) -> None:
    store.check()
    files = []
    for i in range(40):
        path = tmp_path / f"staged-{i}.jpg"
        path.write_bytes(b"thumb-%d" % i)
        # Names as people type them: spaces, accents, a plus sign (each quoted as S3 expects).
        files.append((f"thumbs/128/User {i % 5}+Zoë/{i}.jpg", str(path)))
    seen: list[str] = []
    store.put_files(
        files, "image/jpeg", "private, max-age=60", public=True, threads=threads, stored=seen.append
    )
    assert sorted(seen) == sorted(key for key, _ in files)
    for i, (key, path) in enumerate(files):
        assert store.get(key) == b"thumb-%d" % i and not Path(path).exists()


def test_put_files_stops_at_the_first_failure_and_leaves_the_rest_staged(
    store: ObjectStore, tmp_path: Path
) -> None:
    store.check()
    files = []
    for i in range(12):
        path = tmp_path / f"staged-{i}.jpg"
        if i != 5:  # one file vanished from staging: the upload of it fails
            path.write_bytes(b"x")
        files.append((f"thumbs/128/Ann/{i}.jpg", str(path)))
    seen: list[str] = []
    with pytest.raises(Exception):  # noqa: B017 (each store raises its own kind of "no such file")
        store.put_files(files, "image/jpeg", "private", threads=1, stored=seen.append)
    assert "thumbs/128/Ann/5.jpg" not in seen
    # Every file reported stored is stored and gone from staging; every other one is still there.
    for key, path in files:
        if key in seen:
            assert not Path(path).exists()
            store.get(key)
        elif key != "thumbs/128/Ann/5.jpg":
            assert Path(path).exists()
