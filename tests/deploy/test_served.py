"""Deployments served by `python -m deployments.serve` on a real Prefect server, syncing to moto S3 and nx.

One serve process for the module, as on a site. Its first sync is an enrolment, made when the site
is set up; the tests read that run and start their own, in any order.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pymongo import MongoClient

from facelogin.adapters.embedded import NxServer
from facelogin.bundle import read_bundle
from facelogin.orchestration.triggers import trigger_sync, wait_for_run
from tests.conftest import AWS_ENV, s3_for
from tests.deploy.conftest import (
    BIN,
    ROOT,
    PrefectServer,
    stop_process,
    table_artifact,
    task_run_states,
    wait_http,
)
from tests.servers import FaultyProxy, MotoServer

pytestmark = pytest.mark.slow

SAMPLE_USERS = {"Alex_Lacamoire", "Biden", "Kit_Harington", "Lin_Manuel_Miranda", "Obama", "Rose_Leslie"}
NEW_USER = "NewUser"
SOURCE_USER = "Rose_Leslie"  # enrolled again as NewUser, and taken out of the tree so NewUser is unique


@dataclass
class Site:
    images: Path
    state: Path
    bucket: str
    database: str
    mongodb_uri: str
    s3: FaultyProxy
    serve: subprocess.Popen[bytes]
    server: PrefectServer
    env: dict[str, str]
    enrolment: subprocess.CompletedProcess[str] | None = None
    enrolled_from: Path | None = None

    def cli_env(self) -> dict[str, str]:
        # The site's state: enrolment checks new faces against the site's bundle, not the developer's.
        return self.server.env(FACELOGIN_IMAGES=str(self.images), FACELOGIN_STATE_DIR=str(self.state))

    @property
    def enrol_run(self) -> str:
        assert self.enrolment is not None and self.enrolment.returncode == 0, "the enrolment sync failed"
        return str(json.loads(self.enrolment.stdout)["run"]["id"])


def start_serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen([str(BIN / "python"), "-m", "deployments.serve"], cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def enrol(site: Site, source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "facelogin"), "enroll", NEW_USER, "--from", str(source), "--images", str(site.images),
         "--wait", "--json", "--timeout", "240"],
        env=site.cli_env(), capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip


def _wait_deployments(client: Any, names: list[str], timeout: float = 90) -> None:
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    while True:
        try:
            for name in names:
                client.read_deployment_by_name(name)
            return
        except ObjectNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, faces: Path, moto: MotoServer, nx: NxServer,
    prefect_server: PrefectServer,
) -> Iterator[Site]:  # fmt: skip
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = tmp_path_factory.mktemp("site")
    images = Path(shutil.copytree(faces / "images", root / "images"))
    shutil.rmtree(images / SOURCE_USER)
    bucket = f"faces-{root.name.lower().replace('_', '-')[-20:]}"
    s3_for(moto.url).create_bucket(Bucket=bucket)
    proxy = FaultyProxy(moto.url).start()
    env = prefect_server.env(
        **AWS_ENV,
        AWS_ENDPOINT_URL=proxy.url,
        FACELOGIN_IMAGES=str(images),
        FACELOGIN_STATE_DIR=str(root / "state"),
        FACELOGIN_BUCKET=bucket,
        FACELOGIN_MONGODB_URI=nx.uri,
        FACELOGIN_DATABASE=f"served_{root.name[-12:]}",
        FACELOGIN_ENCODE_WORKERS="2",
        # Pick up a new run within a second instead of the default ten.
        PREFECT_RUNNER_POLL_FREQUENCY="1",
    )
    log = root / "serve.log"
    serve = start_serve(env, log)
    site = Site(images, root / "state", bucket, env["FACELOGIN_DATABASE"], nx.uri, proxy, serve,
                prefect_server, env)  # fmt: skip
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        try:
            with get_client(sync_client=True) as client:
                _wait_deployments(client, ["sync_faces/nightly-sync", "sync_faces/sync-now"])
            wait_http(f"{prefect_server.api_url}/health", serve, log, timeout=10)
            # The site's first sync: someone is enrolled and the run followed to its end.
            site.enrolled_from = Path(shutil.copytree(faces / "images" / SOURCE_USER, root / "from"))
            site.enrolment = enrol(site, site.enrolled_from)
            yield site
        finally:
            stop_process(serve)
            proxy.stop()
            with MongoClient(nx.uri) as mongo:
                mongo.drop_database(site.database)


@pytest.fixture
def api(site: Site, prefect_client: Any) -> Any:
    return prefect_client


def _flow_run(client: Any, run_id: str) -> Any:
    from uuid import UUID

    return client.read_flow_run(UUID(run_id))


def test_enroll_wait_puts_the_new_user_everywhere(site: Site, api: Any) -> None:
    done, source = site.enrolment, site.enrolled_from
    assert done is not None and source is not None

    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is True and out["run"]["state"] == "COMPLETED"
    assert out["run"]["deployment"] == "sync_faces/sync-now"
    assert out["run"]["url"].startswith(f"{site.server.url}/runs/flow-run/")
    names = sorted(p.name for p in (site.images / NEW_USER).iterdir())
    assert names == ["newuser_01.jpg", "newuser_02.jpg"]
    assert (site.images / NEW_USER / "newuser_01.jpg").read_bytes() == (
        source / "rose_leslie_01.jpg"
    ).read_bytes()

    with MongoClient(site.mongodb_uri) as mongo:
        doc = mongo[site.database]["users"].find_one({"username": NEW_USER})
    assert doc is not None
    assert [p["status"] for p in doc["photos"]] == ["encoded", "encoded"]
    assert doc["profile_image"]["keys"]["256"] == f"thumbs/256/{NEW_USER}/newuser_01.jpg"
    listed = s3_for(site.s3.upstream).list_objects_v2(Bucket=site.bucket, Prefix=f"thumbs/256/{NEW_USER}/")
    assert {o["Key"] for o in listed.get("Contents", [])} == {
        f"thumbs/256/{NEW_USER}/newuser_01.jpg", f"thumbs/256/{NEW_USER}/newuser_02.jpg"
    }  # fmt: skip
    bundle = read_bundle(site.state / "bundle")
    assert NEW_USER in bundle.usernames and len(set(bundle.usernames)) == 6

    run = _flow_run(api, site.enrol_run)
    assert run.state.is_completed() and {"enroll", f"user:{NEW_USER}"} <= set(run.tags)


def test_run_publishes_a_table_artifact_with_one_row_per_user(site: Site, api: Any) -> None:
    rows = table_artifact(api, site.enrol_run, "sync-report")

    assert rows is not None, "no table artifact 'sync-report' for the run"
    by_user = {r["user"]: r for r in rows}
    assert set(by_user) == SAMPLE_USERS - {SOURCE_USER} | {NEW_USER}
    assert by_user[NEW_USER] == {
        "user": NEW_USER, "photos": 2, "encoded": 2, "unchanged": 0, "rejected": 0, "uploaded": 4,
        "reasons": "",
    }  # fmt: skip
    assert by_user["Obama"]["photos"] == 3 and by_user["Obama"]["uploaded"] == 6
    assert sum(r["encoded"] for r in rows) == 12 and sum(r["rejected"] for r in rows) == 0


def test_runs_are_named_for_their_deployment(site: Site, api: Any) -> None:
    assert _flow_run(api, site.enrol_run).name.startswith("sync-now-20")


def test_transient_s3_failures_show_as_task_retries(site: Site, api: Any) -> None:
    photo = site.images / "Obama" / "obama_02.jpg"  # new content: one photo to encode and upload again
    with Image.open(photo) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photo, quality=90)
    site.s3.seen.clear()
    # botocore tries each request 3 times; a 4th failure in a row of one object is left to its task's retry.
    site.s3.fail_first, site.s3.fail_paths = 4, "/thumbs/256/Obama/obama_02.jpg"

    run = trigger_sync()
    final = wait_for_run(run.id, timeout=240, poll=1)

    assert final == "COMPLETED"
    assert site.s3.failures() == 4
    states = task_run_states(api, run.id)
    retried = {name: seen for name, seen in states.items() if "AwaitingRetry" in seen}
    # Only the upload of the user with new photos met the 503s (tasks are named per user and stage).
    assert retried and all(name.startswith("upload-Obama") for name in retried), states
    for seen in retried.values():
        assert "Retrying" in seen and seen[-1] == "Completed"
    assert all(seen[-1] == "Completed" for seen in states.values())


def test_two_triggers_at_once_do_not_run_concurrently(site: Site, api: Any) -> None:
    from prefect.deployments import run_deployment

    runs = [
        run_deployment(name="sync_faces/sync-now", timeout=0),
        run_deployment(name="sync_faces/nightly-sync", timeout=0),
        run_deployment(name="sync_faces/sync-now", timeout=0),
    ]
    finals = [wait_for_run(r.id, timeout=240, poll=1) for r in runs]  # type: ignore[union-attr]

    assert finals == ["COMPLETED"] * 3
    done = sorted((_flow_run(api, str(r.id)) for r in runs), key=lambda r: r.start_time)  # type: ignore[union-attr]
    for first, second in itertools.pairwise(done):
        assert first.end_time <= second.start_time, f"{first.name} and {second.name} overlapped"


@dataclass
class Webhook:
    url: str
    received: list[bytes]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A loopback HTTP endpoint that records the bodies POSTed to it."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Webhook(f"http://127.0.0.1:{server.server_address[1]}/hook", received)
    server.shutdown()
    server.server_close()


def test_a_failed_run_notifies_through_the_automation(site: Site, api: Any, webhook: Webhook) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from deployments.notify import AUTOMATION, install

    CustomWebhookNotificationBlock(
        name="facelogin-test", url=webhook.url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    ).save("facelogin-alerts", overwrite=True)
    automation = install("custom-webhook/facelogin-alerts")
    assert api.read_automations_by_name(AUTOMATION)[0].id == automation.id

    run = trigger_sync({"images": str(site.images / "no-such-folder")})
    assert wait_for_run(run.id, timeout=120, poll=1) == "FAILED"

    deadline = time.monotonic() + 60
    while not webhook.received and time.monotonic() < deadline:
        time.sleep(0.5)
    assert webhook.received, "no notification within 60 s of the failure"
    message = json.loads(webhook.received[0])
    name = _flow_run(api, run.id).name  # the flow may rename its run once it starts
    assert message["subject"] == f"facelogin sync {name} Failed"
    assert name in message["body"]
    assert "no-such-folder" in message["body"] and "does not exist" in message["body"]
    assert f"/runs/flow-run/{run.id}" in message["body"]


def test_stopping_serve_leaves_the_nightly_schedule_active(site: Site, api: Any, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    serve = start_serve(site.env, log)  # a second serve process: the site's own keeps serving
    try:
        wait_http(f"{site.server.api_url}/health", serve, log, timeout=10)
        deadline = time.monotonic() + 60  # it registers the deployments, then says it is serving them
        while "being served" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            assert serve.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
    finally:
        stop_process(serve)

    assert serve.returncode is not None
    nightly = api.read_deployment_by_name("sync_faces/nightly-sync")
    assert not nightly.paused
    assert [s.active for s in nightly.schedules] == [True]
