"""Starting a deployment's run (fire and forget) and following it to its end (`facelogin enroll`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from facelogin.orchestration.api import api_url, ui_url
from facelogin.orchestration.deployments import SYNC_NOW, polling, read_deployment

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

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
