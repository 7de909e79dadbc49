"""Prefect for the CLI: the one module of the package that imports it (always inside functions).

- running the sync flow the way a worker does: loaded from its entrypoint in prefect.yaml, in the
  project directory, against the configured Prefect API or a temporary local one;
- starting the `sync-now` deployment and following the run (`facelogin enroll`).

Everything else in `facelogin` is plain Python; the Prefect glue lives in flows/ and tasks/.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from facelogin.processes import child_guard
from facelogin.settings import TEMPORARY_API_ENV

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

ENTRYPOINT = "flows/sync_faces.py:sync_faces"
SYNC_NOW = "sync_faces/sync-now"
FINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


class ProjectNotFound(RuntimeError):
    """The sync flow's files (flows/, tasks/, prefect.yaml) are not where the CLI looked."""


def project_dir() -> Path:
    """The checkout holding prefect.yaml and the flow: $FACELOGIN_HOME, the package's checkout, or cwd.

    FACELOGIN_HOME is also where a worker's pull step moves before each run.
    """
    candidates = []
    if home := os.environ.get("FACELOGIN_HOME"):
        candidates.append(Path(home).expanduser())
    candidates += [Path(__file__).resolve().parents[3], Path.cwd()]
    for folder in candidates:
        if (folder / "prefect.yaml").is_file() and (folder / ENTRYPOINT.split(":")[0]).is_file():
            return folder.resolve()
    raise ProjectNotFound(
        "the sync needs the facelogin checkout (prefect.yaml, flows/, tasks/): run it from the "
        "checkout or set FACELOGIN_HOME to it"
    )


@dataclass
class SyncRun:
    summary: dict[str, Any]
    url: str | None  # the run's page in the Prefect UI, when the API outlives this command


def run_sync(parameters: dict[str, Any]) -> SyncRun:
    """Run the sync flow in this process as a worker would: loaded from its entrypoint in the project.

    Relative paths in `parameters` must already be absolute: the flow runs in the project directory.
    Raises what the flow raised.
    """
    from prefect.flows import load_flow_from_entrypoint

    with contextlib.chdir(project_dir()):
        sync_faces: Any = load_flow_from_entrypoint(ENTRYPOINT, use_placeholder_flow=False)
        state = sync_faces(**parameters, return_state=True)
    url = None
    run_id = state.state_details.flow_run_id
    if run_id is not None and not os.environ.get(TEMPORARY_API_ENV):
        from prefect.utilities.urls import url_for

        url = url_for("flow-run", obj_id=run_id)
    summary: dict[str, Any] = state.result()
    return SyncRun(summary, url)


@contextmanager
def local_prefect_api() -> Iterator[str | None]:
    """Use the configured Prefect API, or start a temporary local one for this run.

    Prefect's own ephemeral mode starts a separate temporary server in every process, so
    each encoding worker process would start its own; one server whose URL the workers
    inherit keeps them all on the same API, and the run visible in one place.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    server = TemporaryServer()
    # The flow's lock knows that no one else shares this API: see tasks/lock.py.
    os.environ[TEMPORARY_API_ENV] = "1"
    try:
        server.start()
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_to_api()
    finally:
        os.environ.pop(TEMPORARY_API_ENV, None)
        # Quietly: a log line about stopping would be queued for the API that is going away.
        logging.getLogger("prefect").disabled = True
        try:
            server.stop()
        finally:
            logging.getLogger("prefect").disabled = False


@dataclass
class TemporaryServer:
    """`prefect server start` (API only, no services, no UI) on a free loopback port, for one command.

    Started with die_with_parent: if this command is killed, the kernel stops the server too.
    """

    process: subprocess.Popen[bytes] | None = None
    output: Any = None  # the server's console output, read when it fails to start
    port: int = 0
    # The first start on a machine creates and migrates Prefect's database: on a Pi or a busy
    # 2-core box that takes longer than Prefect's default 20 s.
    timeout: float = 180.0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        import httpx
        from prefect.settings import PREFECT_HOME

        PREFECT_HOME.value().mkdir(parents=True, exist_ok=True)  # the server does not make it
        self.port = _free_port()
        env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # nobody to report to
        env.pop("PREFECT_API_URL", None)
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                   "--port", str(self.port), "--no-services", "--no-ui", "--log-level", "ERROR"]  # fmt: skip
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - kept open while the server runs
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=self.output, stderr=subprocess.STDOUT,
            preexec_fn=child_guard(),
        )  # fmt: skip
        deadline = time.monotonic() + self.timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.output.seek(0)
                    lines = self.output.read().decode(errors="replace").strip().splitlines()
                    last = next(
                        (line for line in reversed(lines) if "Error" in line), lines[-1] if lines else ""
                    )
                    raise RuntimeError(f"the temporary Prefect server did not start: {last.strip()}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the temporary Prefect server did not answer within {self.timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.output is not None:
            self.output.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _drain_to_api() -> None:
    """Send queued logs and events while the API is still up (else exit waits on retries)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all()


def quiet_prefect_console() -> None:
    """Keep Prefect's console logs to warnings, so --json output is what a script reads."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    logging.getLogger("prefect").setLevel(logging.WARNING)


class TriggerError(RuntimeError):
    """The run could not be started or followed; the message says what to do."""


@dataclass
class RunInfo:
    id: str
    name: str
    deployment: str
    state: str
    url: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "deployment": self.deployment, "state": self.state,
                "url": self.url}  # fmt: skip


def api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def ui_url(flow_run: Any) -> str | None:
    """The flow run's page in the Prefect UI (PREFECT_UI_URL, derived from PREFECT_API_URL)."""
    from prefect.utilities.urls import url_for

    return url_for(flow_run)


def trigger_sync(
    parameters: dict[str, Any] | None = None, deployment: str = SYNC_NOW, tags: list[str] | None = None
) -> RunInfo:
    """Create a flow run of the deployment and return at once (fire and forget)."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    if not api_url():
        raise TriggerError(
            "no Prefect server configured: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api), "
            "or run `facelogin sync` to sync in this process"
        )
    try:
        flow_run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync call, not a coroutine
            name=deployment, parameters=parameters or {}, timeout=0, tags=tags
        )
    except ObjectNotFound:
        raise TriggerError(
            f"deployment {deployment!r} not found on {api_url()}: deploy it with `prefect deploy --all` "
            "or serve it with `python -m deployments.serve` from the checkout"
        ) from None
    except Exception as exc:  # httpx, validation and connection errors alike
        raise TriggerError(f"could not start {deployment!r} on {api_url()}: {exc}") from exc
    state = flow_run.state.type.value if flow_run.state else "SCHEDULED"
    return RunInfo(str(flow_run.id), flow_run.name, deployment, state, ui_url(flow_run))


def read_run(run_id: str | UUID, deployment: str = SYNC_NOW) -> RunInfo:
    """The flow run as it is now (a flow may rename its run when it starts)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(str(run_id)))
    state = flow_run.state.type.value if flow_run.state else "SCHEDULED"
    return RunInfo(str(flow_run.id), flow_run.name, deployment, state, ui_url(flow_run))


def wait_for_run(
    run_id: str | UUID,
    timeout: float | None = None,
    poll: float = 2.0,
    on_state: Callable[[str, str], None] | None = None,
) -> str:
    """Poll the flow run until it reaches a final state; returns that state's type (e.g. COMPLETED).

    `on_state(type, name)` is called on every change, e.g. Scheduled -> Pending -> Running.
    """
    from prefect import get_client

    deadline = None if timeout is None else time.monotonic() + timeout
    last: tuple[str, str] | None = None
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(UUID(str(run_id)))
            state = flow_run.state
            current = (state.type.value, state.name or "") if state else ("SCHEDULED", "Scheduled")
            if current != last:
                last = current
                if on_state:
                    on_state(*current)
            if current[0] in FINAL:
                return current[0]
            if deadline is not None and time.monotonic() > deadline:
                raise TriggerError(f"flow run {run_id} still {current[1]} after {timeout:.0f} s")
            time.sleep(poll)
