"""Flow run names that say what a run is: which deployment started it, and for when."""

from __future__ import annotations


def sync_run_name() -> str:
    """`nightly-sync-2026-11-27-0200`, `sync-now-2026-11-26-1432`, or `local-...` outside a deployment."""
    from prefect.runtime import deployment, flow_run

    when = flow_run.scheduled_start_time
    return f"{deployment.name or 'local'}-{when:%Y-%m-%d-%H%M}"
