"""A real `prefect server start` on a free port, and helpers to read runs, states and artifacts from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from facelogin.adapters.embedded import free_port
from tests.servers import seed_prefect_home

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class PrefectServer:
    process: subprocess.Popen[bytes]
    port: int
    home: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process that talks to this server (CLI, serve, worker)."""
        return {
            **os.environ,
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            **extra,
        }

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process group we started (the server's and the runner's children too), then KILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        try:
            with opener.open(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s; see {log}")


@pytest.fixture(scope="package")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, migrated_prefect_db: Path
) -> Iterator[PrefectServer]:
    """`prefect server start` with its own PREFECT_HOME (SQLite) on a free loopback port.

    Its database starts as a copy of the migrated empty one (tests.servers.prefect_database), as on
    a machine where the server ran before: the migrations are ~3.5 s of CPU per start.

    One per run of the package's tests, stopped after them: idle, its services take ~1.3 s of CPU a
    minute. tests/conftest.py hands the slow deploy tests to one worker together."""
    home = seed_prefect_home(tmp_path_factory.mktemp("prefect-home"), migrated_prefect_db)
    port = free_port()
    log = home / "server.log"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           # The UI asks the server where its API is; the default is port 4200.
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
           # Links in notifications (`flow_run|ui_url`) are made by the server.
           "PREFECT_UI_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    with log.open("ab") as fh:
        process = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = PrefectServer(process, port, home)
    try:
        wait_http(f"{server.api_url}/health", process, log, timeout=120)
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def prefect_client(prefect_server: PrefectServer) -> Iterator[Any]:
    """A sync Prefect client on the test server (settings switched for this test only)."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}),
        get_client(sync_client=True) as client,
    ):
        yield client


def task_run_states(client: Any, flow_run_id: str | UUID) -> dict[str, list[str]]:
    """task run name -> the names of every state it went through, in order."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(str(flow_run_id))]))
    )
    history = {}
    for run in runs:
        states = sorted(client.read_task_run_states(run.id), key=lambda s: s.timestamp)
        history[run.name] = [s.name for s in states]
    return history


def table_artifact(client: Any, flow_run_id: str | UUID, key: str) -> list[dict[str, Any]] | None:
    """The rows of the run's table artifact with `key`, or None when there is none."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(flow_run_id))]),
            key=ArtifactFilterKey(any_=[key]),
        )
    )
    if not found:
        return None
    data = found[0].data
    rows = json.loads(data) if isinstance(data, str) else data
    assert isinstance(rows, list)
    return rows
