"""Every store `open_store` returns answers for itself: which of its own faults are transient, which
URL shows a key in each profile-URL mode, and how it is named in a message (never a secret).

The faults are the stores' own, raised for real: a 503 SlowDown from a proxy in front of moto, a
refused connection, a bucket that is not there, a key that leaves the store, a full device.
"""

from __future__ import annotations

import errno
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from facelogin.adapters.embedded import free_port
from facelogin.adapters.stores import URL_MODES, MissingObject, ObjectStore, StoreError, open_store
from facelogin.settings import Settings
from tests.conftest import AWS_ENV
from tests.servers import FaultyProxy, MotoServer

KEY = "thumbs/128/Ann/a.jpg"
BASE = "https://cdn.example/faces"


def raised(action: Callable[[], Any]) -> BaseException:
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - the fault itself is what is looked at
        return exc
    raise AssertionError("no fault was raised")


def s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """The environment a store opened from a URL reads its client from; one attempt, so a fault
    comes back at once rather than after botocore's retries."""
    for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)


def full_disk() -> OSError:
    """A real ENOSPC: a write to /dev/full (what a full disk under the local store raises)."""
    with open("/dev/full", "wb", buffering=0) as device:
        exc = raised(lambda: device.write(b"x"))
    assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    return exc


@pytest.fixture(params=["path", "file-url"])
def local(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ObjectStore, Path]:
    root = tmp_path / "a folder" / "objects"  # a space: the file:// form is percent-encoded
    return open_store(root if request.param == "path" else root.as_uri()), root


def test_a_local_store_calls_only_a_network_hiccup_transient(local: tuple[ObjectStore, Path]) -> None:
    store, _ = local
    assert not store.remote
    escaped = raised(lambda: store.put("../outside.jpg", b"x", "image/jpeg", ""))
    missing = raised(lambda: store.get("nothing/here.jpg"))
    assert isinstance(escaped, StoreError) and isinstance(missing, MissingObject)
    for permanent in (escaped, missing, full_disk(), ValueError("a bug")):
        assert store.is_transient(permanent) is False, permanent
    # A network filesystem that timed out or dropped the connection may answer the next try.
    for transient in (TimeoutError("nfs server not responding"), ConnectionResetError()):
        assert store.is_transient(transient) is True, transient


def test_a_local_store_shows_its_own_file_in_every_mode(local: tuple[ObjectStore, Path]) -> None:
    store, root = local
    store.put(KEY, b"pixels", "image/jpeg", "")
    for mode in (None, *URL_MODES):
        url = store.url_for(KEY, mode)
        assert url == (root / KEY).as_uri() and store.expires_in(mode) is None
        with urllib.request.urlopen(str(url)) as opened:
            assert opened.read() == b"pixels"
    assert store.stable_url(KEY) == store.url(KEY) == (root / KEY).as_uri()


def test_a_local_store_describes_its_directory(local: tuple[ObjectStore, Path]) -> None:
    store, root = local
    assert store.describe() == f"local object store {root}" and store.location == str(root)
    problem = raised(lambda: store.put("../x.jpg", b"x", "image/jpeg", ""))
    assert store.owns(problem) and store.explain(problem) == f"local object store {root}: {problem}"


def test_an_s3_store_calls_5xx_and_unreachable_transient(
    monkeypatch: pytest.MonkeyPatch, moto: MotoServer, bucket: str, faulty_s3: FaultyProxy
) -> None:
    s3_env(monkeypatch, faulty_s3.url)
    faulty_s3.fail_first = 1
    store = open_store(f"s3://{bucket}/thumbs")
    assert store.remote
    slow_down = raised(lambda: store.put(KEY, b"x", "image/jpeg", ""))
    assert isinstance(slow_down, ClientError) and faulty_s3.failures() == 1
    assert store.is_transient(slow_down) is True

    s3_env(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    unreachable = raised(lambda: open_store(f"s3://{bucket}").get(KEY))
    assert isinstance(unreachable, EndpointConnectionError) and store.is_transient(unreachable) is True


def test_an_s3_store_calls_refusals_and_missing_things_permanent(
    monkeypatch: pytest.MonkeyPatch, moto: MotoServer, bucket: str
) -> None:
    s3_env(monkeypatch, moto.url)
    store = open_store(f"s3://{bucket}")
    missing = raised(lambda: store.get("nothing/here.jpg"))
    no_bucket = raised(lambda: open_store("s3://no-such-bucket-here").get(KEY))
    refused = raised(lambda: open_store("s3://no-such-bucket-here").check())
    assert isinstance(missing, MissingObject) and isinstance(no_bucket, ClientError)
    assert isinstance(refused, StoreError)
    for permanent in (missing, no_bucket, refused, full_disk(), ValueError("a bug")):
        assert store.is_transient(permanent) is False, permanent


@pytest.mark.parametrize("mode", URL_MODES)
def test_an_s3_store_answers_url_for_each_mode(
    monkeypatch: pytest.MonkeyPatch, moto: MotoServer, bucket: str, mode: str
) -> None:
    s3_env(monkeypatch, moto.url)
    store = open_store(Settings(bucket=bucket, url_mode=mode, base_url=BASE, presign_seconds=600))
    store.put(KEY, b"pixels", "image/jpeg", "", public=True)

    presigned = store.url_for(KEY, "presigned")
    assert presigned is not None and "X-Amz-Signature=" in presigned
    with urllib.request.urlopen(presigned, timeout=10) as opened:
        assert opened.read() == b"pixels"
    assert store.expires_in("presigned") == 600
    assert store.url_for(KEY, "public-acl") == f"{moto.url}/{bucket}/{KEY}"
    assert store.expires_in("public-acl") is None and store.expires_in("base-url") is None
    assert store.url_for(KEY, "base-url") == f"{BASE}/{KEY}"
    with pytest.raises(ValueError, match="not one of"):
        store.url_for(KEY, "public")

    # The store's own mode: what the sync stores (nothing where links expire) and what a page shows now.
    assert store.expires_in() == (600 if mode == "presigned" else None)
    assert store.stable_url(KEY) == (None if mode == "presigned" else store.url_for(KEY, mode))
    if mode == "public-acl":
        with urllib.request.urlopen(str(store.url(KEY)), timeout=10) as opened:
            assert opened.read() == b"pixels"


def test_an_s3_store_without_a_base_url_has_no_base_url_link(
    monkeypatch: pytest.MonkeyPatch, moto: MotoServer, bucket: str
) -> None:
    s3_env(monkeypatch, moto.url)
    assert open_store(f"s3://{bucket}").url_for(KEY, "base-url") is None


def test_an_s3_store_describes_endpoint_and_bucket_never_the_keys(
    monkeypatch: pytest.MonkeyPatch, moto: MotoServer, bucket: str
) -> None:
    s3_env(monkeypatch, moto.url)
    store = open_store(Settings(bucket=bucket))
    said = store.describe()
    assert said == f"bucket {bucket!r} (FACELOGIN_BUCKET) at {moto.url} (AWS_ENDPOINT_URL)"
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in said and AWS_ENV["AWS_ACCESS_KEY_ID"] not in said
    no_bucket = raised(lambda: open_store("s3://no-such-bucket-here").get(KEY))
    assert store.owns(no_bucket) and store.explain(no_bucket).startswith(said)
    assert not store.owns(ValueError("a bug"))


def test_a_thumbnail_goes_in_one_request_and_only_a_large_body_asks_to_continue(
    monkeypatch: pytest.MonkeyPatch, seaweed: Any, tmp_path: Path
) -> None:
    """botocore would send every file-like body with `Expect: 100-continue` (a round trip to the
    server per thumbnail before its bytes go); the store's client asks only for bodies of a MiB or
    more, where being refused before the upload saves something. Tried on SeaweedFS."""
    import uuid

    from facelogin.adapters.stores.s3 import EXPECT_FROM, S3Store, s3_client

    s3_env(monkeypatch, seaweed.url)
    client = s3_client()
    name = f"faces-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    sent: dict[str, str | bytes | None] = {}

    def note(request: Any, **_: Any) -> None:
        sent[request.url.rsplit("/", 1)[-1]] = request.headers.get("Expect")

    client.meta.events.register("before-send.s3.PutObject", note)
    try:
        store = S3Store(client, name)
        thumb = tmp_path / "a.jpg"
        thumb.write_bytes(b"\xff\xd8" + b"j" * 6000)
        store.put_file("thumbs/128/Ann/a.jpg", thumb, "image/jpeg", "private, max-age=60", public=True)
        large = b"e" * EXPECT_FROM
        store.put("encodings/large.json", large, "application/json", "no-cache")
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", note)
    assert sent == {"a.jpg": None, "large.json": b"100-continue"}
    assert (
        store.get("thumbs/128/Ann/a.jpg").startswith(b"\xff\xd8")
        and store.get("encodings/large.json") == large
    )


def test_clients_share_what_boto3_parsed_but_never_stale_keys(
    monkeypatch: pytest.MonkeyPatch, seaweed: Any
) -> None:
    """The check's client and the upload's come from one boto3 session (the S3 model is parsed once, not
    again as the upload stage starts); a key changed in the environment gets a session of its own, so a
    rotated or mistyped secret is seen at once. SeaweedFS checks the signature (moto does not)."""
    import uuid

    from facelogin.adapters.stores.s3 import s3_client

    s3_env(monkeypatch, seaweed.url)
    check, upload = s3_client(2, read_timeout=5.0), s3_client(16)
    assert check is not upload and check._loader is upload._loader
    name = f"faces-{uuid.uuid4().hex[:12]}"
    upload.create_bucket(Bucket=name)
    open_store(f"s3://{name}").check()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTTHEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    assert s3_client(16)._loader is not upload._loader
    refused = raised(lambda: open_store(f"s3://{name}").check())
    assert isinstance(refused, StoreError) and "not-the-secret" not in str(refused)


def test_many_files_to_a_dead_endpoint_read_as_cannot_connect(
    monkeypatch: pytest.MonkeyPatch, bucket: str, tmp_path: Path
) -> None:
    """The sync's uploads go through the AWS CRT's own client: its faults are the store's too."""
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    s3_env(monkeypatch, dead)
    store = open_store(f"s3://{bucket}")
    staged = tmp_path / "a.jpg"
    staged.write_bytes(b"x")
    fault = raised(lambda: store.put_files([(KEY, str(staged))], "image/jpeg", "", threads=4))
    assert store.owns(fault) and store.is_transient(fault) is True
    assert store.explain(fault).startswith(f"cannot connect to bucket {bucket!r}")
    assert dead in store.explain(fault) and staged.exists()
