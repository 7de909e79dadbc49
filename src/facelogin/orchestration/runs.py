"""Running the sync flow in this process the way a worker does: loaded from its entrypoint in
prefect.yaml, in the project directory, against the API of facelogin.orchestration.api.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facelogin.settings import TEMPORARY_API_ENV

if TYPE_CHECKING:
    from facelogin.settings import Settings

ENTRYPOINT = "flows/sync_faces.py:sync_faces"


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


def sync_parameters(settings: Settings, **choices: Any) -> dict[str, Any]:
    """The sync flow's parameters for a run on `settings`: the images root and the state directory,
    absolute (the flow runs in the project directory), and the run's `choices` (full, dry_run, ...).

    JSON values only, and nothing secret: Prefect stores a run's parameters and shows them in its
    UI. The bucket, MongoDB and AWS access the flow takes from the environment and the blocks it
    names, as a deployment's run does (facelogin.orchestration.blocks).
    """
    return {
        "images": str(settings.images.resolve()),
        "state_dir": str(settings.state_dir.resolve()),
        **choices,
    }


def run_sync(parameters: dict[str, Any]) -> SyncRun:
    """Run the sync flow in this process as a worker would: loaded from its entrypoint in the project.

    Paths in `parameters` must already be absolute (sync_parameters): the flow runs in the project
    directory.
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
