"""Prefect for the CLI: the one module of the package that imports it (always inside functions).

- running the sync flow the way a worker does: loaded from its entrypoint in prefect.yaml, in the
  project directory, against the configured Prefect API or a temporary local one;
- starting the `sync-now` deployment and following the run (`facelogin enroll`).

Everything else in `facelogin` is plain Python; the Prefect glue lives in flows/ and tasks/.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
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
    with contextlib.chdir(project_dir()), heartbeats_not_waited_for():
        state = load_sync_flow()(**parameters, return_state=True)
    url = None
    run_id = state.state_details.flow_run_id
    if run_id is not None and not os.environ.get(TEMPORARY_API_ENV):
        from prefect.utilities.urls import url_for

        url = url_for("flow-run", obj_id=run_id)
    summary = dict(state.result())  # the flow returns a read-only Summary mapping
    return SyncRun(summary, url)


@contextmanager
def heartbeats_not_waited_for() -> Iterator[None]:
    """Flow runs started in the body send their heartbeats as always; at the end, the engine does not
    wait for the heartbeat thread.

    Prefect's sync engine joins that thread when the run ends, and the thread notices in 1 s steps
    (up to 1 s of every `facelogin sync`). Told to stop, it sends nothing more and ends on its own
    (a daemon thread): Prefect's async engine does not wait for it either. Crashed-run detection is
    untouched: a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds while the run is under way.
    """
    import inspect

    from prefect import flow_engine

    original = flow_engine._send_heartbeats
    if "join_on_exit" not in inspect.signature(original).parameters:  # another Prefect: leave it be
        yield
        return
    flow_engine._send_heartbeats = functools.partial(original, join_on_exit=False)
    try:
        yield
    finally:
        flow_engine._send_heartbeats = original


@functools.cache
def load_sync_flow() -> Any:
    """The sync flow, loaded from its entrypoint in the project (once per process).

    Its imports take a while: `facelogin sync` loads it while the temporary Prefect API starts.
    """
    from prefect.flows import load_flow_from_entrypoint

    with contextlib.chdir(project_dir()):
        loaded: Any = load_flow_from_entrypoint(ENTRYPOINT, use_placeholder_flow=False)
    return with_plain_parameters(loaded)


_PLAIN = (str, int, float, bool, type(None))


def with_plain_parameters(flow: Any) -> Any:
    """`flow`, recording parameters that are already JSON values (the sync's: a path, flags, a count)
    as they are.

    Prefect passes every parameter of a new flow run through FastAPI's `jsonable_encoder`, which
    returns such values unchanged but first imports FastAPI and Starlette (some 60 modules, 0.2-0.4 s
    of every `facelogin sync`; a flow run without parameters never imports them). Any other value
    still goes through Prefect's own serialization.
    """
    serialize = flow.serialize_parameters

    def plain_or_prefect(parameters: dict[str, Any]) -> dict[str, Any]:
        if all(type(value) in _PLAIN for value in parameters.values()):
            return dict(parameters)
        return dict(serialize(parameters))

    flow.serialize_parameters = plain_or_prefect
    return flow


@contextmanager
def local_prefect_api(meanwhile: Callable[[], object] | None = None) -> Iterator[str | None]:
    """Use the configured Prefect API, or start a temporary local one for this run.

    Prefect's own ephemeral mode starts a separate temporary server in every process, so
    each encoding worker process would start its own; one server whose URL the workers
    inherit keeps them all on the same API, and the run visible in one place.

    `meanwhile()` is called while a temporary server starts (seconds of its own start-up, on
    another core), or first thing with a configured API. It runs in this thread, so that the
    processes it starts are stopped with this one (see facelogin.processes.child_guard).
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if meanwhile is not None:
            meanwhile()
        yield configured
        return
    server = TemporaryServer()
    # The flow's lock knows that no one else shares this API: see tasks/lock.py.
    os.environ[TEMPORARY_API_ENV] = "1"
    try:
        server.start(meanwhile)
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


START_LOCK = "facelogin-server-start.lock"  # in PREFECT_HOME: one server start at a time


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

    def start(self, meanwhile: Callable[[], object] | None = None) -> None:
        """Start the server and wait until it answers; `meanwhile()` is called while it starts."""
        from prefect.settings import PREFECT_HOME

        home = PREFECT_HOME.value()
        home.mkdir(parents=True, exist_ok=True)  # the server does not make it
        # Two commands starting at once on a new machine would both migrate the same SQLite
        # database ("duplicate column name"): one start at a time per PREFECT_HOME, until healthy.
        with open(home / START_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._launch(home)
            try:
                if meanwhile is not None:
                    meanwhile()
                self._wait()
            except BaseException:
                self.stop()
                raise

    def _launch(self, home: Path) -> None:
        self.port = _free_port()
        # The database the lock above guards; nobody to report analytics to.
        env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                   "--port", str(self.port), "--no-services", "--no-ui", "--log-level", "ERROR"]  # fmt: skip
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - kept open while the server runs
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=self.output, stderr=subprocess.STDOUT,
            preexec_fn=child_guard(),
        )  # fmt: skip

    def _wait(self) -> None:
        import httpx

        assert self.process is not None and self.output is not None
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


class _RunLogsElsewhere(logging.Filter):
    """On the console of a quiet command, task runs' failures and retries and the flow run's errors are
    left to the run's own log (the API) and to the command's one line: they would say the same with
    the raw exception (a ClientError, a pymongo topology) before it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("prefect.task_runs"):
            return record.levelno >= logging.CRITICAL
        return not (record.name.startswith("prefect.flow_runs") and record.levelno >= logging.ERROR)


def quiet_run_logs() -> None:
    """Filter the console handler Prefect set up (once Prefect is imported) with _RunLogsElsewhere."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _RunLogsElsewhere) for f in handler.filters
        ):
            handler.addFilter(_RunLogsElsewhere())


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


class NothingPolling(TriggerError):
    """The run waits for a serve process or worker that is not there; `hint` says what to start."""

    def __init__(self, message: str, hint: str | None) -> None:
        super().__init__(f"{message}: {hint}" if hint else message)
        self.hint = hint


def wait_for_run(
    run_id: str | UUID,
    timeout: float | None = None,
    poll: float = 2.0,
    on_state: Callable[[str, str], None] | None = None,
    deployment: str | None = None,
    poll_grace: float = 10.0,
) -> str:
    """Poll the flow run until it reaches a final state; returns that state's type (e.g. COMPLETED).

    `on_state(type, name)` is called on every change, e.g. Scheduled -> Pending -> Running.
    With `deployment`, a run still waiting to start after `poll_grace` s makes this ask whether
    anything polls the deployment; NothingPolling when nothing has for STALE_AFTER s.
    """
    from prefect import get_client

    started = time.monotonic()
    next_check = started + poll_grace
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
            waiting = current[0] in {"SCHEDULED", "PENDING"} or current[1] == "Late"
            if deployment and waiting and time.monotonic() >= next_check:
                next_check = time.monotonic() + 5.0
                info = read_deployment(deployment)
                if info is not None and not (status := polling(info)).ok:
                    raise NothingPolling(status.detail, status.hint)
            if deadline is not None and time.monotonic() > deadline:
                raise TriggerError(f"flow run {run_id} still {current[1]} after {timeout:.0f} s")
            time.sleep(poll)


# What the operator's commands read from the API: deployments and who polls them, runs, blocks.

NIGHTLY = "sync_faces/nightly-sync"
FLOW_NAME = "sync_faces"
POOL_HINT = "FACELOGIN_HOME=/path/to/checkout prefect worker start --pool {pool}"
SERVE_HINT = "python -m deployments.serve (in the checkout; or systemctl start facelogin-serve)"
# A runner or worker polls every 10 s by default: no poll for 30 s means nothing is polling.
STALE_AFTER = 30.0


class BlockError(RuntimeError):
    """A block the settings name cannot be read; the message names the setting and the fix."""


def settings_with_blocks(settings: Any) -> Any:
    """Settings with what their named Prefect blocks hold (the CLI's side; the flow reads them itself)."""
    if not settings.block_names:
        return settings
    names = ", ".join(f"{k}={v}" for k, v in settings.block_names.items())
    if not api_url():
        raise BlockError(f"{names} names Prefect blocks: set PREFECT_API_URL to the server that holds them")
    from prefect.blocks.system import Secret
    from prefect_aws import AwsCredentials, S3Bucket

    loaded: dict[str, Any] = {}
    for key, block_type, name in (
        ("s3", S3Bucket, settings.s3_block),
        ("credentials", AwsCredentials, settings.aws_credentials_block),
        ("secret", Secret, settings.mongodb_secret_block),
    ):
        if not name:
            continue
        try:
            loaded[key] = block_type.load(name)
        except ValueError as exc:  # Prefect's "Unable to find block document named ..."
            raise BlockError(
                f"no {block_type.__name__} block named {name!r} on {api_url()}: create it (Blocks in the UI) "
                f"or fix the setting ({exc.__class__.__name__})"
            ) from None
    uri = loaded["secret"].get() if "secret" in loaded else None
    return settings.with_block_objects(loaded.get("s3"), loaded.get("credentials"), str(uri) if uri else None)


def api_health() -> str | None:
    """None when the configured Prefect API answers, else why not."""
    import httpx

    url = api_url()
    if not url:
        return "no Prefect server configured (PREFECT_API_URL)"
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=5)
    except httpx.HTTPError as exc:
        return f"{url} does not answer: {exc.__class__.__name__}"
    return None if response.status_code == 200 else f"{url}/health answered {response.status_code}"


@dataclass
class DeploymentInfo:
    name: str
    id: str
    work_pool: str | None
    last_polled: Any  # datetime | None
    parameters: dict[str, Any]
    pull_steps: list[dict[str, Any]]
    schedules: list[dict[str, Any]]  # cron, timezone, active
    paused: bool = False


def read_deployment(name: str) -> DeploymentInfo | None:
    """The deployment `flow/deployment` as the server has it, or None when there is none."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            d = client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None
    schedules = [
        {"cron": getattr(s.schedule, "cron", None), "timezone": getattr(s.schedule, "timezone", None),
         "active": s.active}
        for s in d.schedules or []
    ]  # fmt: skip
    return DeploymentInfo(name, str(d.id), d.work_pool_name, d.last_polled, dict(d.parameters or {}),
                          list(d.pull_steps or []), schedules, bool(d.paused))  # fmt: skip


@dataclass
class Polling:
    ok: bool
    detail: str
    hint: str | None = None


def polling(info: DeploymentInfo, stale_after: float = STALE_AFTER) -> Polling:
    """Whether a serve process or a worker polls the deployment now (a poll within `stale_after` s)."""
    from datetime import UTC, datetime

    from prefect import get_client

    now = datetime.now(UTC)
    age = (now - info.last_polled).total_seconds() if info.last_polled else None
    workers: list[str] = []
    if info.work_pool:
        with get_client(sync_client=True) as client:
            for w in client.read_workers_for_work_pool(info.work_pool):
                beat = w.last_heartbeat_time
                if beat is not None and (now - beat).total_seconds() < max(stale_after, 90):
                    workers.append(w.name)
    if age is not None and age < stale_after:
        by = (
            f"worker {', '.join(workers)}"
            if workers
            else ("a worker" if info.work_pool else "a serve process")
        )
        return Polling(True, f"{info.name} polled {age:.0f} s ago by {by}")
    when = "never polled" if age is None else f"last polled {_ago(age)}"
    if info.work_pool:
        hint = POOL_HINT.format(pool=info.work_pool)
        where = f"{info.name} (work pool {info.work_pool}, {len(workers)} live worker(s)) {when}"
    else:
        hint, where = SERVE_HINT, f"{info.name} (served) {when}"
    return Polling(False, f"nothing is polling {where}", f"start one: {hint}")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def deployment_images(info: DeploymentInfo, relative: Path) -> tuple[Path, str] | None:
    """The images root a run of the deployment reads, when the server tells it; and how that is known.

    A served deployment records it as its `images` parameter (deployments/serve.py); a work-pool
    one runs in its pull step's directory, literal or `{{ $FACELOGIN_HOME }}` (read from here).
    """
    if images := info.parameters.get("images"):
        return Path(images), f"the images parameter of {info.name}"
    for step in info.pull_steps:
        directory = (step.get("prefect.deployments.steps.set_working_directory") or {}).get("directory")
        if not directory:
            continue
        if "{{" not in directory:
            return Path(directory) / relative, f"the working directory of {info.name}"
        if "$FACELOGIN_HOME" in directory and os.environ.get("FACELOGIN_HOME"):
            home = Path(os.environ["FACELOGIN_HOME"]).expanduser()
            return home / relative, f"FACELOGIN_HOME, the working directory of {info.name}"
    return None


@dataclass
class LastRun:
    id: str
    name: str
    deployment: str | None
    state: str
    state_name: str
    start: Any  # datetime | None
    end: Any
    url: str | None
    counts: dict[str, int] | None
    message: str | None


def last_run(flow_name: str = FLOW_NAME) -> LastRun | None:
    """The latest sync run that started (any deployment, or `facelogin sync`), with its counts."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False)),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        if not runs:
            return None
        run = runs[0]
        deployment = client.read_deployment(run.deployment_id).name if run.deployment_id else None
        counts = _report_counts(client, run.id)
    state = run.state
    return LastRun(str(run.id), run.name, deployment, state.type.value if state else "UNKNOWN",
                   (state.name if state else None) or "Unknown", run.start_time, run.end_time,
                   ui_url(run), counts, state.message if state else None)  # fmt: skip


def _report_counts(client: Any, run_id: UUID) -> dict[str, int] | None:
    """Users, photos, encoded, rejected and uploaded, summed from the run's sync-report table."""
    import json

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]), key=ArtifactFilterKey(any_=["sync-report"])
        )
    )
    if not found:
        return None
    rows = json.loads(found[0].data) if isinstance(found[0].data, str) else found[0].data
    counts = {"users": len(rows)}
    for key in ("photos", "encoded", "unchanged", "rejected", "uploaded"):
        counts[key] = sum(int(r.get(key) or 0) for r in rows)
    return counts


def next_run(deployment: str = NIGHTLY) -> tuple[Any, str | None] | None:
    """When the deployment runs next (a scheduled run, else its active cron), and the schedule's zone."""
    from datetime import UTC, datetime

    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    info = read_deployment(deployment)
    if info is None:
        return None
    zone = next((s["timezone"] for s in info.schedules if s["active"]), None)
    with get_client(sync_client=True) as client:
        scheduled = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment.split("/")[-1]])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=1,
        )
    if scheduled and scheduled[0].expected_start_time:
        return scheduled[0].expected_start_time, zone
    cron = next((s for s in info.schedules if s["active"] and s["cron"]), None)
    if cron is None or info.paused:
        return None
    from zoneinfo import ZoneInfo

    from prefect._vendor.croniter import croniter

    tz = ZoneInfo(cron["timezone"] or "UTC")
    return croniter(cron["cron"], datetime.now(UTC).astimezone(tz)).get_next(datetime), zone
