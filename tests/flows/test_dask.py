"""Encoding on a real local Dask cluster: a scheduler and two single-thread workers on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from facelogin.adapters.embedded import free_port
from facelogin.bundle import read_bundle
from flows.sync_faces import sync_faces
from tests.deploy.conftest import stop_process

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]
BIN = Path(sys.executable).parent


def start_cluster(tmp_path: Path, scheme: str = "tcp", tls: list[str] | None = None) -> Iterator[str]:
    """A scheduler and two single-thread workers on loopback (`dask scheduler`, `dask worker`), stopped
    after the block; `tls` are the command lines' --tls-* options."""
    from prefect.settings import PREFECT_API_URL

    pytest.importorskip(
        "prefect_dask", reason="the dask extra: uv sync (dev group) or pip install 'facelogin[dask]'"
    )
    port = str(free_port())
    address = f"{scheme}://127.0.0.1:{port}"
    # The workers report their task runs to the same Prefect API as the flow.
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    log = (tmp_path / "dask.log").open("ab")
    tls = tls or []
    scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard",
                 "--protocol", scheme, *tls]  # fmt: skip
    processes = [subprocess.Popen(scheduler, env=env, stdout=log, stderr=log, start_new_session=True)]
    time.sleep(1.0)
    worker = [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard", *tls]
    processes += [
        subprocess.Popen(
            [*worker, "--local-directory", str(tmp_path / f"w{i}")],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    try:
        yield address
    finally:
        for process in reversed(processes):
            stop_process(process)
        log.close()


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    from distributed import Client

    for address in start_cluster(tmp_path):
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address


@pytest.fixture
def tls_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The cluster with mutual TLS: a self-signed certificate (distributed's Security.temporary) as the
    CA and every role's certificate, in files; the client's side set the way an operator would, in
    distributed's configuration from the environment."""
    import dask
    from distributed import Client
    from distributed.security import Security

    made = Security.temporary()
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.write_text(made.tls_ca_file)
    cert.write_text(made.tls_client_cert)
    key.write_text(made.tls_client_key)
    key.chmod(0o600)
    tls = ["--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)]
    for name, value in {"TLS__CA_FILE": ca, "TLS__CLIENT__CERT": cert, "TLS__CLIENT__KEY": key}.items():
        monkeypatch.setenv(f"DASK_DISTRIBUTED__COMM__{name}", str(value))
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "true")
    dask.config.refresh()
    try:
        for address in start_cluster(tmp_path, "tls", tls):
            with Client(address, timeout=60) as client:
                client.wait_for_workers(2, timeout=120)
                # Asked of the scheduler now: scheduler_info() is the client's copy, refreshed every
                # few seconds, and may still be the one from before the workers joined.
                workers = list(client.nthreads())
            assert len(workers) == 2 and all(w.startswith("tls://") for w in workers), workers
            yield address
    finally:
        monkeypatch.undo()
        dask.config.refresh()


def test_a_dask_cluster_encodes_the_same_as_the_local_workers(
    images: Path,
    sync_env: dict[str, str],
    dask_cluster: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
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
    warned = [r.getMessage() for r in caplog.records if "is not tls://" in r.getMessage()]
    assert warned and "keep it on a private network" in warned[0]  # tcp:// runs any client's pickles

    assert on_dask["rejected"] == [] and on_dask["errors"] == []
    assert on_dask["encoded"] == local["encoded"] == 12
    assert dask_bundle.usernames == local_bundle.usernames
    assert (
        np.allclose(dask_bundle.encodings, local_bundle.encodings)
        and dask_bundle.version == local_bundle.version
    )


def test_a_dask_cluster_with_tls_encodes_and_refuses_a_client_it_did_not_certify(
    images: Path, sync_env: dict[str, str], tls_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dask
    from distributed import Client
    from distributed.security import Security

    # A client that trusts the scheduler but has a certificate of its own is refused: the scheduler
    # takes no pickle from strangers.
    stranger = Security.temporary()
    ca = dask.config.get("distributed.comm.tls.ca-file")
    security = Security(tls_ca_file=ca, tls_client_cert=stranger.tls_client_cert,
                        tls_client_key=stranger.tls_client_key, require_encryption=True)  # fmt: skip
    with pytest.raises((OSError, TimeoutError)):
        Client(tls_cluster, timeout=5, security=security)
    monkeypatch.setenv("FACELOGIN_TASK_RUNNER", "dask")
    monkeypatch.setenv("FACELOGIN_DASK_ADDRESS", tls_cluster)
    on_dask = sync_faces(images=str(images))
    assert (on_dask["encoded"], on_dask["rejected"], on_dask["errors"]) == (12, [], [])
    assert len(read_bundle(Path(sync_env["FACELOGIN_STATE_DIR"]) / "bundle").usernames) == 6


def test_the_local_dask_cluster_runs_with_tls(
    images: Path, sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No address: a local cluster started for the run, its scheduler and workers on tls:// with a
    throw-away certificate (a local user cannot send its scheduler a pickle either)."""
    pytest.importorskip("prefect_dask")
    from facelogin.settings import Settings
    from tasks.encode import encoding_runner

    monkeypatch.setenv("FACELOGIN_TASK_RUNNER", "dask")
    monkeypatch.setenv("FACELOGIN_ENCODE_WORKERS", "2")
    # distributed's default dashboard port taken (by another cluster, or here): no warning, which
    # this suite turns into an error, and the dashboard listens on loopback only.
    with contextlib.ExitStack() as stack:
        squatter = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):
            squatter.bind(("127.0.0.1", 8787))
            squatter.listen()
        runner = stack.enter_context(encoding_runner(Settings(), photos=5))  # type: ignore[attr-defined]
        assert urlsplit(runner.client.dashboard_link).hostname == "127.0.0.1"
        assert runner.client.scheduler.address.startswith("tls://")
        workers = list(runner.client.nthreads())  # the scheduler's answer, not the client's cached copy
        assert len(workers) == 2 and all(w.startswith("tls://") for w in workers), workers
    for user in ("Alex_Lacamoire", "Kit_Harington", "Lin_Manuel_Miranda", "Rose_Leslie"):
        shutil.rmtree(images / user)
    summary = sync_faces(images=str(images))
    assert (summary["encoded"], summary["rejected"], summary["errors"]) == (5, [], [])
