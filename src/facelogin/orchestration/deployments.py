"""What the operator's commands read from the API: the deployments and who polls them, the images
root a deployment's run reads, the last sync run and the next nightly one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from facelogin.orchestration.api import ui_url

SYNC_NOW = "sync_faces/sync-now"
NIGHTLY = "sync_faces/nightly-sync"
FLOW_NAME = "sync_faces"
POOL_HINT = "FACELOGIN_HOME=/path/to/checkout prefect worker start --pool {pool}"
SERVE_HINT = "python -m deployments.serve (in the checkout; or systemctl start facelogin-serve)"
# A runner or worker polls every 10 s by default: no poll for 30 s means nothing is polling.
STALE_AFTER = 30.0


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
