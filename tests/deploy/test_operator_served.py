"""Served deployments as an operator meets them: a serve process on embedded defaults with
FACELOGIN_REQUIRE_REMOTE=1, settings from Prefect blocks, enroll from another directory, enroll --wait
with nothing polling, status and doctor against the same server.

Each test starts its own `python -m deployments.serve` in a copy of the checkout's Prefect files, so
the images root is the checkout's `images/` (no FACELOGIN_IMAGES), as on a site set up by the README.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pymongo import MongoClient

from facelogin.adapters.embedded import NxServer
from facelogin.orchestration.triggers import trigger_sync, wait_for_run
from tests.conftest import s3_for
from tests.deploy.conftest import BIN, ROOT, PrefectServer, stop_process, table_artifact
from tests.deploy.test_served import _wait_deployments
from tests.servers import MotoServer

pytestmark = pytest.mark.slow

PLANTED_AWS = "planted-aws-secret-5f0c1e"
PLANTED_MONGO = "planted-mongo-secret-9a7b3d"


def checkout_copy(root: Path, faces: Path, users: tuple[str, ...]) -> Path:
    """The Prefect side of the checkout (prefect.yaml, flows, tasks, deployments) and an images/ folder."""
    home = root / "checkout"
    home.mkdir()
    shutil.copy(ROOT / "prefect.yaml", home)
    for folder in ("flows", "tasks", "deployments"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for user in users:
        shutil.copytree(faces / "images" / user, home / "images" / user)
    return home


@pytest.fixture
def api(prefect_server: PrefectServer) -> Iterator[PrefectServer]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server


def serve(home: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    from prefect import get_client

    with log.open("ab") as fh:
        process = subprocess.Popen([str(BIN / "python"), "-m", "deployments.serve"], cwd=home, env=env,
                                   stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 90
    while "being served" not in log.read_text():  # its deployments registered, with its images root
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)
    with get_client(sync_client=True) as client:
        _wait_deployments(client, ["sync_faces/nightly-sync", "sync_faces/sync-now"])
    return process


def facelogin(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "facelogin"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def run_logs(run_id: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])))
    return "\n".join(log.message for log in logs)


def artifacts_text(run_id: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)]))
        )
    return "\n".join(str(a.data) for a in found)


REFUSAL = "FACELOGIN_REQUIRE_REMOTE is set but this run has embedded defaults"


def test_a_serve_process_on_embedded_defaults_with_require_remote_fails_its_runs(
    api: PrefectServer, faces: Path, tmp_path: Path
) -> None:
    home = checkout_copy(tmp_path, faces, ("Obama",))
    env = api.env(
        HOME=str(tmp_path / "home"), FACELOGIN_REQUIRE_REMOTE="1", PREFECT_RUNNER_POLL_FREQUENCY="1"
    )
    from prefect import get_client

    process = serve(home, env, tmp_path / "serve.log")
    try:
        run = trigger_sync()
        final = wait_for_run(run.id, timeout=180)
        # Read while the serve process runs: stopped while the run's process is still exiting, it
        # marks the run "Runner is shutting down." over the run's own message. The run's logs reach
        # the API in batches after its final state: wait for them (up to 30 s) before judging.
        deadline = time.monotonic() + 30
        with get_client(sync_client=True) as client:
            while True:
                message = client.read_flow_run(UUID(run.id)).state.message or ""
                logs = run_logs(run.id)
                if (REFUSAL in message and REFUSAL in logs) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            history = [(s.name, s.message) for s in client.read_flow_run_states(UUID(run.id))]
    finally:
        stop_process(process)

    assert final == "FAILED", history
    for text in (message, logs):
        assert REFUSAL in text, (text, history)
        assert "no FACELOGIN_BUCKET or S3 block" in text and "no FACELOGIN_MONGODB_URI" in text
    assert not (tmp_path / "home" / ".facelogin" / "objects").exists()  # nothing synced into its HOME


@pytest.fixture
def blocks(api: PrefectServer, moto: MotoServer, nx: NxServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    """An S3Bucket block (with AwsCredentials pointing at moto) and a Secret block with the MongoDB URI."""
    from prefect.blocks.system import Secret
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    suffix = tmp_path.name[-12:].lower().replace("_", "-")
    bucket = f"faces-{suffix}"
    s3_for(moto.url).create_bucket(Bucket=bucket)
    credentials = AwsCredentials(
        aws_access_key_id="test", aws_secret_access_key=PLANTED_AWS, region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=moto.url),
    )  # fmt: skip
    S3Bucket(bucket_name=bucket, credentials=credentials).save(f"faces-{suffix}", overwrite=True)
    Secret(value=f"{nx.uri}?appname={PLANTED_MONGO}").save(f"mongodb-{suffix}", overwrite=True)
    database = f"blocks_{suffix.replace('-', '_')}"
    yield {"FACELOGIN_S3_BLOCK": f"faces-{suffix}", "FACELOGIN_MONGODB_SECRET_BLOCK": f"mongodb-{suffix}",
           "FACELOGIN_DATABASE": database, "bucket": bucket}  # fmt: skip
    with MongoClient(nx.uri) as mongo:
        mongo.drop_database(database)


def test_enroll_from_another_directory_lands_where_a_block_configured_serve_syncs(
    api: PrefectServer, faces: Path, tmp_path: Path, blocks: dict[str, str], moto: MotoServer, nx: NxServer
) -> None:
    home = checkout_copy(tmp_path, faces, ("Obama", "Biden"))
    named = {k: v for k, v in blocks.items() if k.startswith("FACELOGIN_")}
    # No AWS_*, no FACELOGIN_BUCKET/MONGODB_URI, no FACELOGIN_IMAGES: blocks and the checkout only.
    env = api.env(HOME=str(tmp_path / "home"), FACELOGIN_REQUIRE_REMOTE="1", FACELOGIN_ENCODE_WORKERS="2",
                  PREFECT_RUNNER_POLL_FREQUENCY="1", **named)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = Path(shutil.copytree(faces / "images" / "Rose_Leslie", tmp_path / "from"))
    cli_env = api.env(HOME=str(tmp_path / "cli-home"), **named)
    process = serve(home, env, tmp_path / "serve.log")
    try:
        done = facelogin("enroll", "NewUser", "--from", str(source), "--wait", "--json", "--timeout", "240",
                         env=cli_env, cwd=elsewhere)  # fmt: skip
        status = facelogin("status", "--json", env=cli_env, cwd=elsewhere, timeout=120)
        doctor = facelogin("doctor", "--json", env=cli_env, cwd=elsewhere, timeout=120)
        users = facelogin("users", "--json", env=cli_env, cwd=elsewhere, timeout=120)
    finally:
        stop_process(process)

    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["images"]["path"] == str(home / "images") and "images parameter" in out["images"]["source"]
    assert sorted(p.name for p in (home / "images" / "NewUser").iterdir()) == [
        "newuser_01.jpg",
        "newuser_02.jpg",
    ]
    assert not (elsewhere / "images").exists()
    with MongoClient(nx.uri) as mongo:
        doc = mongo[blocks["FACELOGIN_DATABASE"]]["users"].find_one({"username": "NewUser"})
    assert doc is not None and doc["counts"]["encoded"] == 2
    keys = s3_for(moto.url).list_objects_v2(Bucket=blocks["bucket"], Prefix="thumbs/256/NewUser/")
    assert len(keys.get("Contents", [])) == 2

    run_id = out["run"]["id"]
    report = artifacts_text(run_id)
    assert f"s3://{blocks['bucket']}" in report and f"/{blocks['FACELOGIN_DATABASE']}" in report
    assert "Warnings" not in report
    rows = table_artifact_rows(run_id)
    assert {r["user"] for r in rows} == {"Obama", "Biden", "NewUser"}

    last = json.loads(status.stdout)
    assert status.returncode == 0, status.stderr
    assert last["last_run"]["id"] == run_id and last["last_run"]["state"] == "Completed"
    on_disk = len(list((home / "images").glob("*/*.jpg")))
    assert last["last_run"]["counts"]["users"] == 3 and last["last_run"]["counts"]["photos"] == on_disk
    assert last["next_nightly"]["schedule_timezone"] == "Europe/London"
    assert (
        last["next_nightly"]["local_time"].endswith(("UTC", "GMT", "BST"))
        or last["next_nightly"]["local_time"]
    )

    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["MongoDB"]["status"] == "OK" and checks["object store"]["status"] == "OK", checks
    assert checks["settings"]["detail"].startswith("valid; blocks read")

    listed = {u["username"]: u for u in json.loads(users.stdout)["users"]}
    assert listed["NewUser"]["profile_image"] == f"s3://{blocks['bucket']}/thumbs/256/NewUser/newuser_01.jpg"

    # The planted secrets are nowhere a person or a script reads.
    seen = "\n".join([done.stdout, done.stderr, status.stdout, status.stderr, doctor.stdout, doctor.stderr,
                      users.stdout, users.stderr, run_logs(run_id), report, json.dumps(rows),
                      (ROOT / "prefect.yaml").read_text(), (tmp_path / "serve.log").read_text()])  # fmt: skip
    assert PLANTED_AWS not in seen and PLANTED_MONGO not in seen


def table_artifact_rows(run_id: str) -> list[dict[str, Any]]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return table_artifact(client, run_id, "sync-report") or []


def test_enroll_wait_with_nothing_polling_says_what_to_start(
    api: PrefectServer, faces: Path, tmp_path: Path
) -> None:
    from prefect import get_client
    from prefect.states import Cancelled

    from deployments.serve import build_deployments

    for deployment in build_deployments():  # registered, and nothing polls them
        deployment.apply()
    images = tmp_path / "images"
    env = api.env(HOME=str(tmp_path / "home"), FACELOGIN_IMAGES=str(images),
                  FACELOGIN_STATE_DIR=str(tmp_path / "state"))  # fmt: skip
    started = time.monotonic()
    done = facelogin("enroll", "Biden", "--from", str(faces / "images" / "Biden"), "--wait", "--json",
                     env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    took = time.monotonic() - started
    out = json.loads(done.stdout)
    try:
        assert done.returncode == 2, done.stdout + done.stderr
        assert took < 60, took
        assert "nothing is polling sync_faces/sync-now" in out["error"]
        assert "python -m deployments.serve" in out["hint"] and "stays scheduled" in out["error"]
        assert len(list((images / "Biden").iterdir())) == 2  # the photos are in place
    finally:
        with get_client(sync_client=True) as client:  # no later serve process should pick it up
            client.set_flow_run_state(UUID(out["run"]["id"]), Cancelled(), force=True)
