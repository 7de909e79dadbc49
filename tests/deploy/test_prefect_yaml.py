"""prefect.yaml: `prefect deploy --all` against a real server creates both deployments; a worker runs them."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from pymongo import MongoClient

from deployments.serve import PREFECT_YAML, build_deployments, read_deployments
from facelogin.adapters.embedded import NxServer
from tasks.lock import SYNC_LIMIT
from tests.conftest import AWS_ENV
from tests.deploy.conftest import BIN, ROOT, PrefectServer, stop_process
from tests.servers import MotoServer


def test_prefect_yaml_declares_both_deployments_without_secrets() -> None:
    text = PREFECT_YAML.read_text()
    specs = {d["name"]: d for d in read_deployments()}

    assert set(specs) == {"nightly-sync", "sync-now"}
    for spec in specs.values():
        assert spec["entrypoint"] == "flows/sync_faces.py:sync_faces"
        assert spec["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        assert spec["enforce_parameter_schema"] is True
        assert spec["work_pool"]["name"] == "facelogin-pool"
    assert specs["nightly-sync"]["schedules"] == [
        {"cron": "0 2 * * *", "timezone": "Europe/London", "active": True}
    ]
    assert specs["sync-now"]["schedules"] == []
    pull = yaml.safe_load(text)["pull"]
    assert pull == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $FACELOGIN_HOME }}"}}
    ]
    assert not re.search(r"(?i)(secret|password|aws_access|token)\s*:", text)


def test_serve_builds_the_same_deployments_as_prefect_yaml() -> None:
    built = {d.name: d for d in build_deployments()}

    assert set(built) == {"nightly-sync", "sync-now"}
    (nightly,) = built["nightly-sync"].schedules
    assert (nightly.schedule.cron, nightly.schedule.timezone) == ("0 2 * * *", "Europe/London")
    assert built["sync-now"].schedules == []
    for d in built.values():
        assert d.concurrency_limit == 1
        assert d.concurrency_options.collision_strategy.value == "ENQUEUE"
        assert d.enforce_parameter_schema is True
    assert build_deployments("America/New_York")[0].schedules[0].schedule.timezone == "America/New_York"


@pytest.fixture(scope="module")
def deployed(prefect_server: PrefectServer) -> Iterator[PrefectServer]:
    """The pool created by deployments/workpool.py and `prefect deploy --all` run from the checkout."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = prefect_server.env()
    pool = subprocess.run([str(BIN / "python"), "-m", "deployments.workpool"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert pool.returncode == 0, pool.stderr
    deploy = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    yield prefect_server
    # Leave the names free for the served deployments of the other module.
    with (
        temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}),
        get_client(sync_client=True) as c,
    ):
        for name in ("sync_faces/nightly-sync", "sync_faces/sync-now"):
            c.delete_deployment(c.read_deployment_by_name(name).id)


@pytest.mark.slow
def test_deploy_all_creates_both_deployments(deployed: PrefectServer, prefect_client: Any) -> None:
    nightly = prefect_client.read_deployment_by_name("sync_faces/nightly-sync")
    now = prefect_client.read_deployment_by_name("sync_faces/sync-now")

    (schedule,) = nightly.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 2 * * *", "Europe/London")
    assert schedule.active and not nightly.paused
    assert now.schedules == []
    for d in (nightly, now):
        assert d.entrypoint == "flows/sync_faces.py:sync_faces"
        assert d.work_pool_name == "facelogin-pool"
        assert d.enforce_parameter_schema is True
        assert d.global_concurrency_limit is not None and d.global_concurrency_limit.limit == 1
        assert d.concurrency_options.collision_strategy.value == "ENQUEUE"
        assert set(d.parameter_openapi_schema["properties"]) == {
            "images",
            "full",
            "dry_run",
            "allow_removals",
            "prune",
            "state_dir",
        }
        # A deployment's run has no CLI to give them: every parameter falls back to the worker's settings.
        assert not d.parameter_openapi_schema.get("required")
        assert d.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $FACELOGIN_HOME }}"}}
        ]
    # Runs of the two deployments exclude each other through the pool and the shared limit.
    assert prefect_client.read_work_pool("facelogin-pool").concurrency_limit == 1
    assert prefect_client.read_global_concurrency_limit_by_name(SYNC_LIMIT).limit == 1


@pytest.mark.slow
def test_a_process_worker_runs_sync_now_from_the_pool(
    deployed: PrefectServer, prefect_client: Any, faces: Path, tmp_path: Path, moto: MotoServer, nx: NxServer,
    bucket: str, database: str,
) -> None:  # fmt: skip
    from facelogin.orchestration.triggers import trigger_sync, wait_for_run

    images = tmp_path / "images"
    shutil.copytree(faces / "images" / "Biden", images / "Biden")
    env = deployed.env(
        **AWS_ENV, AWS_ENDPOINT_URL=moto.url, FACELOGIN_STATE_DIR=str(tmp_path / "state"),
        FACELOGIN_BUCKET=bucket, FACELOGIN_MONGODB_URI=nx.uri, FACELOGIN_DATABASE=database,
        FACELOGIN_ENCODE_WORKERS="2",
        # The pull step's working directory, read from the worker's environment at run time.
        FACELOGIN_HOME=str(ROOT), PREFECT_WORKER_QUERY_SECONDS="1",
    )  # fmt: skip
    log = tmp_path / "worker.log"
    with log.open("ab") as fh:
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "facelogin-pool", "--type", "process"],
            cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        run = trigger_sync({"images": str(images)})
        final = wait_for_run(run.id, timeout=180, poll=1)
    finally:
        stop_process(worker)

    assert final == "COMPLETED", log.read_text()[-3000:]
    flow_run = prefect_client.read_flow_run(UUID(run.id))
    assert flow_run.work_pool_name == "facelogin-pool"
    with MongoClient(nx.uri) as mongo:
        assert [d["username"] for d in mongo[database]["users"].find()] == ["Biden"]
