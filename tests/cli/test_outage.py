"""A store or database that fails before or during a run, as an operator sees it from the CLI: one
line naming the setting, the host and the bucket; exit 2 when nothing was changed, else exit 1 with
`--json` still carrying the summary of what was done."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from facelogin.adapters.embedded import NxServer, free_port, start_nx
from tests.cli.test_cli import facelogin
from tests.conftest import AWS_ENV, s3_for
from tests.servers import FaultyProxy, MotoServer, TcpProxy

EVERY_METHOD = ("GET", "PUT", "HEAD", "POST", "DELETE")


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"outage-{uuid.uuid4().hex[:8]}"
    s3_for(moto.url).create_bucket(Bucket=name)
    return name


@pytest.fixture
def small_images(faces: Path, tmp_path: Path) -> Path:
    images = tmp_path / "images"
    for user in ("Biden", "Obama"):
        shutil.copytree(faces / "images" / user, images / user)
    return images


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultyProxy]:
    started = FaultyProxy(moto.url).start()
    yield started
    started.stop()


def s3_env(clean_env: dict[str, str], tmp_path: Path, endpoint: str, bucket: str) -> dict[str, str]:
    return (
        clean_env
        | AWS_ENV
        | {
            "AWS_ENDPOINT_URL": endpoint,
            "FACELOGIN_BUCKET": bucket,
            "FACELOGIN_STATE_DIR": str(tmp_path / "state"),
            "FACELOGIN_TASK_RETRIES": "0",  # what fails fails now: the test is about what is said
        }
    )


def test_an_s3_that_answers_503_before_the_run_is_named_with_its_bucket(
    small_images: Path, clean_env: dict[str, str], tmp_path: Path, proxy: FaultyProxy, bucket: str
) -> None:
    proxy.fail_methods, proxy.fail_rate = EVERY_METHOD, 1.0
    done = facelogin(
        "sync", "--images", str(small_images), env=s3_env(clean_env, tmp_path, proxy.url, bucket)
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    line = lines[0]
    assert f"bucket {bucket!r} (FACELOGIN_BUCKET) at {proxy.url} (AWS_ENDPOINT_URL)" in line, line
    assert "answered 503" in line and "to HeadBucket after 3 attempt(s)" in line and "ClientError" not in line


@pytest.mark.slow
def test_an_s3_that_dies_mid_run_is_named_and_the_summary_kept(
    small_images: Path, served_env: dict[str, str], tmp_path: Path, proxy: FaultyProxy, bucket: str
) -> None:
    """S3 answers until the first thumbnail arrives, then 503 to everything: the uploads and the
    bundle fail, MongoDB has the users; --json says what was done, per photo."""

    def die_at_first_upload() -> None:
        while not any(method == "PUT" and "/thumbs/" in path for method, path, _ in list(proxy.seen)):
            time.sleep(0.01)
        proxy.fail_methods, proxy.fail_paths, proxy.fail_rate = EVERY_METHOD, "", 1.0

    threading.Thread(target=die_at_first_upload, daemon=True).start()
    env = s3_env(served_env, tmp_path, proxy.url, bucket)
    done = facelogin("sync", "--images", str(small_images), "--json", env=env)
    assert done.returncode == 1, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]  # no task's raw ClientError
    assert len(lines) == 1 and "ClientError" not in done.stderr, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["ok"] is False
    assert f"bucket {bucket!r} (FACELOGIN_BUCKET) at {proxy.url}" in out["error"], out["error"]
    summary = out["summary"]
    assert summary is not None and (summary["users"], summary["encoded"]) == (2, 5)
    assert {row["user"] for row in summary["per_user"]} == {"Biden", "Obama"}
    assert summary["upserted"] == 2 and summary["bundle"] is None
    assert summary["errors"] and all(bucket in e["error"] for e in summary["errors"]), summary["errors"]


@pytest.fixture
def own_nx(tmp_path: Path) -> Iterator[tuple[NxServer, TcpProxy]]:
    server = start_nx(tmp_path / "nx")
    relay = TcpProxy(server.port)
    yield server, relay
    relay.stop()
    server.stop()


def test_a_mongodb_that_goes_silent_is_named_with_its_host_and_setting(
    small_images: Path, clean_env: dict[str, str], tmp_path: Path, own_nx: tuple[NxServer, TcpProxy]
) -> None:
    """A host that takes the connection and never answers (a hung server, a firewall dropping
    packets) is not a ServerSelectionTimeoutError and its topology: one line, exit 2."""
    server, relay = own_nx
    server.stop()
    relay.stop()
    silent = TcpProxy(server.port)  # accepts, forwards to nothing: the connection just drops
    try:
        env = clean_env | {
            "FACELOGIN_MONGODB_URI": f"mongodb://127.0.0.1:{silent.port}/",
            "FACELOGIN_STATE_DIR": str(tmp_path / "state"),
        }
        done = facelogin("sync", "--images", str(small_images), env=env)
    finally:
        silent.stop()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"127.0.0.1:{silent.port}" in lines[0] and "FACELOGIN_MONGODB_URI" in lines[0], lines[0]
    assert "Topology" not in lines[0]


@pytest.mark.slow
def test_a_mongodb_that_dies_mid_run_is_named_and_the_summary_kept(
    small_images: Path,
    served_env: dict[str, str],
    tmp_path: Path,
    proxy: FaultyProxy,
    bucket: str,
    own_nx: tuple[NxServer, TcpProxy],
) -> None:
    """MongoDB goes away once the thumbnails start uploading (encodings saved, users not yet written):
    one line naming its host and setting, exit 1, and the summary of what was done."""
    _, relay = own_nx

    def die_at_first_upload() -> None:
        while not any(method == "PUT" and "/thumbs/" in path for method, path, _ in list(proxy.seen)):
            time.sleep(0.01)
        relay.upstream_port = free_port()  # nothing listens there: connections drop
        relay.drop_connections()

    threading.Thread(target=die_at_first_upload, daemon=True).start()
    env = s3_env(served_env, tmp_path, proxy.url, bucket) | {
        "FACELOGIN_MONGODB_URI": f"mongodb://127.0.0.1:{relay.port}/"
    }
    done = facelogin("sync", "--images", str(small_images), "--json", env=env)
    assert done.returncode == 1, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert f"MongoDB at 127.0.0.1:{relay.port}" in out["error"], out["error"]
    assert "FACELOGIN_MONGODB_URI" in out["error"] and "Topology" not in out["error"]
    summary = out["summary"]
    assert summary is not None and (summary["encoded"], summary["uploaded"]) == (5, 10)
    assert summary["upserted"] == 0 and summary["bundle"] is None
