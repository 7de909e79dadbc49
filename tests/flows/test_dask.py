"""Encoding on a real local Dask cluster: a scheduler and two single-thread workers on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facelogin.adapters.embedded import free_port
from facelogin.bundle import read_bundle
from flows.sync_faces import sync_faces
from tests.deploy.conftest import stop_process

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]
BIN = Path(sys.executable).parent


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL

    pytest.importorskip(
        "prefect_dask", reason="the dask extra: uv sync (dev group) or pip install 'facelogin[dask]'"
    )
    address = f"tcp://127.0.0.1:{free_port()}"
    # The workers report their task runs to the same Prefect API as the flow.
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    log = (tmp_path / "dask.log").open("ab")
    port = address.rsplit(":", 1)[1]
    scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"]
    processes = [subprocess.Popen(scheduler, env=env, stdout=log, stderr=log, start_new_session=True)]
    time.sleep(1.0)
    processes += [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / f"w{i}"),
            ],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    for process in reversed(processes):
        stop_process(process)
    log.close()


def test_a_dask_cluster_encodes_the_same_as_the_local_workers(
    images: Path, sync_env: dict[str, str], dask_cluster: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local = sync_faces(images=str(images))
    local_bundle = read_bundle(Path(sync_env["FACELOGIN_STATE_DIR"]) / "bundle")

    # A second site (state, database, bucket prefix) encoded on the cluster.
    monkeypatch.setenv("FACELOGIN_TASK_RUNNER", "dask")
    monkeypatch.setenv("FACELOGIN_DASK_ADDRESS", dask_cluster)
    monkeypatch.setenv("FACELOGIN_STATE_DIR", str(tmp_path / "dask-state"))
    monkeypatch.setenv("FACELOGIN_DATABASE", sync_env["FACELOGIN_DATABASE"] + "_dask")
    monkeypatch.setenv("FACELOGIN_THUMBS_PREFIX", "dask-thumbs")
    monkeypatch.setenv("FACELOGIN_BUNDLE_PREFIX", "dask-encodings")
    on_dask = sync_faces(images=str(images))
    dask_bundle = read_bundle(tmp_path / "dask-state" / "bundle")

    assert on_dask["rejected"] == [] and on_dask["errors"] == []
    assert on_dask["encoded"] == local["encoded"] == 12
    assert dask_bundle.usernames == local_bundle.usernames
    assert (
        np.allclose(dask_bundle.encodings, local_bundle.encodings)
        and dask_bundle.version == local_bundle.version
    )
