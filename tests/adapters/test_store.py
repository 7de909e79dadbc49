"""Object stores: S3Store against moto's S3 server on loopback, DirStore on disk."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from facelogin.adapters.stores import DirStore, StoreError
from facelogin.adapters.stores.s3 import S3Store, is_transient
from tests.conftest import s3_for
from tests.servers import FaultyProxy, MotoServer


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture
def client(moto: MotoServer) -> Any:
    return s3_for(moto.url)


@pytest.mark.parametrize("mode", ["presigned", "public-acl", "base-url"])
def test_put_get_delete_in_each_url_mode(client: Any, bucket: str, moto: MotoServer, mode: str) -> None:
    store = S3Store(client, bucket, url_mode=mode, base_url="https://cdn.example/faces")
    store.check()
    store.put("thumbs/128/Ann/a.jpg", b"jpeg-bytes", "image/jpeg", "private, max-age=60", public=True)
    head = client.head_object(Bucket=bucket, Key="thumbs/128/Ann/a.jpg")
    assert head["ContentType"] == "image/jpeg" and head["CacheControl"] == "private, max-age=60"
    assert store.get("thumbs/128/Ann/a.jpg") == b"jpeg-bytes"

    plain = f"{moto.url}/{bucket}/thumbs/128/Ann/a.jpg"
    if mode == "presigned":
        assert store.stable_url("thumbs/128/Ann/a.jpg") is None
        assert status_of(str(store.url("thumbs/128/Ann/a.jpg"))) == 200
        assert status_of(plain) == 403  # private by default
    elif mode == "public-acl":
        assert store.url("thumbs/128/Ann/a.jpg") == plain
        assert status_of(plain) == 200
    else:
        assert store.url("thumbs/128/Ann/a.jpg") == "https://cdn.example/faces/thumbs/128/Ann/a.jpg"
        assert status_of(plain) == 403

    # Anything not asked to be public (the bundle, its manifest) stays private in every mode.
    store.put("encodings/latest.json", b"{}", "application/json", "no-cache")
    assert status_of(f"{moto.url}/{bucket}/encodings/latest.json") == 403

    store.delete(["thumbs/128/Ann/a.jpg", "encodings/latest.json", "never/existed.jpg"])
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_missing_bucket_is_a_clear_permanent_error(client: Any) -> None:
    with pytest.raises(StoreError, match=r"bucket 'nope-not-here' does not exist at http://127\.0\.0\.1"):
        S3Store(client, "nope-not-here").check()


def test_public_acl_on_a_bucket_without_acls_says_what_to_do(bucket: str, faulty_s3: FaultyProxy) -> None:
    faulty_s3.acls_disabled = True
    store = S3Store(s3_for(faulty_s3.url), bucket, url_mode="public-acl")
    with pytest.raises(StoreError, match="ACLs disabled") as info:
        store.put("a.jpg", b"x", "image/jpeg", "no-cache", public=True)
    assert "FACELOGIN_URL_MODE=presigned" in str(info.value)
    S3Store(s3_for(faulty_s3.url), bucket).put("a.jpg", b"x", "image/jpeg", "no-cache")  # private works


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a base URL"):
        S3Store(None, "b", url_mode="base-url")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not one of"):
        S3Store(None, "b", url_mode="public")  # type: ignore[arg-type]


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("ServiceUnavailable", 503), True),
        (client_error("RequestTimeout", 400), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchBucket", 404), False),
        (client_error("InvalidBucketName", 400), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ReadTimeoutError(endpoint_url="http://x"), True),
        (ConnectionResetError(), True),
        (StoreError("permanent"), False),
        (ValueError("bug"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_dir_store_writes_privately_and_refuses_escapes(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "objects")
    store.check()
    store.put("thumbs/128/Ann/a.jpg", b"x", "image/jpeg", "")
    path = tmp_path / "objects" / "thumbs/128/Ann/a.jpg"
    assert path.read_bytes() == b"x" and oct(path.stat().st_mode & 0o777) == "0o600"
    assert store.url("thumbs/128/Ann/a.jpg") == path.as_uri()
    with pytest.raises(StoreError, match="leaves the store"):
        store.put("../outside.jpg", b"x", "image/jpeg", "")
    store.delete(["thumbs/128/Ann/a.jpg", "gone.jpg"])
    assert not path.exists()


def test_dir_store_moves_staged_files_in_and_refuses_escapes(tmp_path: Path) -> None:
    store, outside = DirStore(tmp_path / "objects"), tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "objects" / "thumbs").mkdir(parents=True)
    (tmp_path / "objects" / "thumbs" / "link").symlink_to(outside)  # a folder that leads out
    staged = tmp_path / "staged.jpg"
    for key in ("../x.jpg", "thumbs/../../x.jpg", "thumbs/link/x.jpg", "thumbs/..", "thumbs/"):
        staged.write_bytes(b"x")
        with pytest.raises(StoreError, match="leaves the store"):
            store.put_file(key, staged, "image/jpeg", "")
        assert staged.exists() and list(outside.iterdir()) == []
    with pytest.raises(StoreError, match="leaves the store"):
        store.delete(["thumbs/link/x.jpg"])

    for name in ("a.jpg", "b.jpg"):  # the second reuses the folder found for the first
        staged.write_bytes(name.encode())
        staged.chmod(0o644)
        store.put_file(f"thumbs/128/Ann/{name}", staged, "image/jpeg", "")
        stored = tmp_path / "objects" / "thumbs/128/Ann" / name
        assert not staged.exists() and stored.read_bytes() == name.encode()
        assert oct(stored.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "objects" / "thumbs/128/Ann").stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize("mode", ["presigned", "public-acl"])
def test_many_files_keep_their_headers_and_privacy(
    client: Any, bucket: str, moto: MotoServer, mode: str, tmp_path: Path
) -> None:
    """`put_files` (the AWS CRT's client) sends what `put` sends: type, caching, and an ACL only
    when the thumbnails are meant to be public."""
    store = S3Store(client, bucket, url_mode=mode)
    files = []
    for i in range(6):
        (tmp_path / f"{i}.jpg").write_bytes(b"jpeg-%d" % i)
        files.append((f"thumbs/128/Ann/{i}.jpg", str(tmp_path / f"{i}.jpg")))
    store.put_files(files, "image/jpeg", "private, max-age=60", public=True, threads=4)
    for key, _ in files:
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ContentType"] == "image/jpeg" and head["CacheControl"] == "private, max-age=60"
        assert status_of(f"{moto.url}/{bucket}/{key}") == (200 if mode == "public-acl" else 403)


def test_without_the_crt_many_files_go_through_boto3_threads(
    client: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `s3` extra alone (a Pi fetching bundles) has no awscrt: `put_files` still works."""
    from facelogin.adapters.stores import s3

    def no_crt(_client: Any) -> Any:
        raise ImportError("No module named 'awscrt'")

    monkeypatch.setattr(s3, "_transfers", no_crt)
    store = S3Store(client, bucket)
    files = []
    for i in range(5):
        (tmp_path / f"{i}.jpg").write_bytes(b"jpeg-%d" % i)
        files.append((f"thumbs/128/Bo/{i}.jpg", str(tmp_path / f"{i}.jpg")))
    seen: list[str] = []
    store.put_files(files, "image/jpeg", "no-cache", threads=3, stored=seen.append)
    assert sorted(seen) == sorted(key for key, _ in files)
    assert client.head_object(Bucket=bucket, Key="thumbs/128/Bo/4.jpg")["ContentType"] == "image/jpeg"
    assert not any(Path(path).exists() for _, path in files)
