"""Faults at the grain where they happen: S3 that fails one request in four, MongoDB that dies mid-run."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageEnhance, ImageOps
from pymongo import MongoClient

from facelogin.adapters.embedded import NxServer, start_nx
from flows.sync_faces import sync_faces
from tests.conftest import s3_for
from tests.servers import FaultyProxy, TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


def variants(faces: Path, root: Path, per_user: int) -> int:
    """A tree of `per_user` distinct photos for each sample user, each a variant of one of theirs."""
    count = 0
    for folder in sorted((faces / "images").iterdir()):
        sources = sorted(folder.iterdir())
        for i in range(per_user):
            with Image.open(sources[i % len(sources)]) as im:
                photo = ImageOps.exif_transpose(im).convert("RGB")
            photo.thumbnail((560, 560))
            if i % 2:
                photo = ImageOps.mirror(photo)
            margin = (i % 4) * photo.width // 100
            photo = photo.crop((margin, margin, photo.width - margin, photo.height - margin))
            photo = ImageEnhance.Brightness(photo).enhance(0.9 + (i % 7) * 0.03)
            out = root / folder.name / f"{folder.name.lower()}_{i:03d}.jpg"
            out.parent.mkdir(parents=True, exist_ok=True)
            photo.save(out, quality=80 + i % 15)
            count += 1
    return count


def task_retries(flow_run_id: Any) -> Counter[str]:
    """How many times each stage's task runs were retried by Prefect."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        return Counter(
            run.name.split("-")[0]
            for run in runs
            for state in client.read_task_run_states(run.id)
            if state.name == "AwaitingRetry"
        )


def test_every_photo_arrives_through_an_s3_that_fails_a_quarter_of_requests(
    faces: Path, tmp_path: Path, sync_env: dict[str, str], faulty_s3: FaultyProxy,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    images = tmp_path / "images"
    photos = variants(faces, images, per_user=36)  # 216 photos, 6 users of 36
    faulty_s3.fail_methods = ("GET", "PUT", "POST", "DELETE", "HEAD")
    faulty_s3.fail_rate, faulty_s3.reset_rate, faulty_s3.seed = 0.20, 0.05, 8
    monkeypatch.setenv("AWS_ENDPOINT_URL", faulty_s3.url)

    state = sync_faces(images=str(images), return_state=True)
    summary = state.result()

    assert summary["errors"] == [] and summary["rejected"] == []
    assert (summary["photos"], summary["encoded"], summary["uploaded"]) == (photos, photos, 2 * photos)
    expected = {f"thumbs/{s}/{p.parent.name}/{p.name}" for p in images.glob("*/*.jpg") for s in (128, 256)}
    listed = s3_for(sync_env["AWS_ENDPOINT_URL"]).get_paginator("list_objects_v2")
    pages = listed.paginate(Bucket=sync_env["FACELOGIN_BUCKET"], Prefix="thumbs/")
    assert {o["Key"] for page in pages for o in page.get("Contents", [])} == expected  # 0 lost
    with MongoClient(sync_env["FACELOGIN_MONGODB_URI"]) as mongo:
        db = mongo[sync_env["FACELOGIN_DATABASE"]]
        users = list(db["users"].find({}, {"_id": 0, "username": 1, "photos": 1}))
        assert db["faces"].count_documents({}) == photos
    assert len(users) == len({u["username"] for u in users}) == 6  # 0 duplicated
    assert all(len(u["photos"]) == 36 and all(p["thumbs"] for p in u["photos"]) for u in users)

    faults = Counter(status for *_, status in faulty_s3.seen if status == 503)[503] + faulty_s3.resets
    retried = task_retries(state.state_details.flow_run_id)
    with capsys.disabled():
        print(f"\n[faults] {len(faulty_s3.seen)} requests, {faults} faults ({faulty_s3.resets} dropped "
              f"connections); task retries by stage: {dict(retried)}")  # fmt: skip


@pytest.fixture
def own_nx(tmp_path: Path) -> Iterator[tuple[NxServer, TcpProxy]]:
    """An nx-27017 of this test's own, reached through a proxy so that it can die and come back."""
    server = start_nx(tmp_path / "nx")
    proxy = TcpProxy(server.port)
    yield server, proxy
    proxy.stop()
    server.stop()


def test_a_mongodb_killed_during_the_upsert_and_restarted_loses_nothing(
    images: Path, sync_env: dict[str, str], own_nx: tuple[NxServer, TcpProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, proxy = own_nx
    uri = f"mongodb://127.0.0.1:{proxy.port}/"
    monkeypatch.setenv("FACELOGIN_MONGODB_URI", uri)
    import tasks.catalog

    upsert = tasks.catalog.upsert_users.fn
    restarted: list[NxServer] = []
    killed: list[int] = []

    def kill_then_upsert(settings: Any, outcome: Any, digests: Any = None) -> int:
        """The first upsert meets a dead server; it comes back (same data, same address) 2 s later."""
        if not killed:
            killed.append(first.pid)
            first.process.kill()
            first.process.wait()
            proxy.drop_connections()

            def restart() -> None:
                restarted.append(start_nx(first.data_dir))
                proxy.upstream_port = restarted[0].port

            threading.Timer(2.0, restart).start()
        return upsert(settings, outcome, digests)

    monkeypatch.setattr(tasks.catalog.upsert_users, "fn", kill_then_upsert)
    try:
        summary = sync_faces(images=str(images))
    finally:
        monkeypatch.setattr(tasks.catalog.upsert_users, "fn", upsert)
    try:
        assert restarted, "the upsert never ran"
        assert summary["errors"] == [] and summary["upserted"] == 6
        with MongoClient(uri) as mongo:
            names = [d["username"] for d in mongo[sync_env["FACELOGIN_DATABASE"]]["users"].find()]
        assert sorted(names) == sorted(p.name for p in images.iterdir())  # all there, none twice

        again = sync_faces(images=str(images))
        assert (again["encoded"], again["uploaded"], again["upserted"]) == (0, 0, 0)  # converged
        assert again["bundle"]["version"] == summary["bundle"]["version"]
    finally:
        for server in restarted:
            server.stop()
