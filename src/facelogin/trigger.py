"""Start the `sync-now` deployment through the Prefect API, and optionally follow the run to its end.

Prefect is imported inside the functions: `facelogin` must start fast on a Pi for the login commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

SYNC_NOW = "sync_faces/sync-now"
FINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


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
            "or serve it with `python deployments/serve.py`"
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
