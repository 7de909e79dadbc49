"""`facelogin status`: the last sync run (state, time, counts) and the next nightly run, from Prefect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from facelogin.cli.common import local_time
from facelogin.cli.exits import OK, REJECTED


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Show the last sync run (state, time, counts) and when the nightly run is next, in local time.

    Exit 0 the last run completed (or none has run yet), 1 it did not complete, 2 error (no API).
    """
    from facelogin.cli import runs
    from facelogin.cli.common import echo_json, fail

    if problem := runs.api_health():
        fail(
            "status", f"{problem}: status is read from the Prefect server that runs the deployments", as_json
        )
    try:
        last = runs.last_run()
        upcoming = runs.next_run()
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        fail("status", f"cannot read runs from {runs.api_url()}: {type(exc).__name__}: {exc}", as_json)
    completed = last is None or last.state == "COMPLETED"
    out: dict[str, Any] = {"ok": completed, "api": runs.api_url(), "last_run": None, "next_nightly": None}
    if last is not None:
        out["last_run"] = {
            "id": last.id,
            "name": last.name,
            "deployment": last.deployment,
            "state": last.state_name,
            "start": last.start,
            "end": last.end,
            "local_time": local_time(last.start),
            "counts": last.counts,
            "url": last.url,
            "message": last.message,
        }
    if upcoming is not None:
        moment, zone = upcoming
        out["next_nightly"] = {
            "time": moment,
            "local_time": local_time(moment),
            "schedule_timezone": zone,
            "in_hours": round((moment - datetime.now(UTC)).total_seconds() / 3600, 1),
        }
    if as_json:
        echo_json(out)
        raise typer.Exit(OK if completed else REJECTED)
    if last is None:
        typer.echo("last run: none yet")
    else:
        took = f" in {(last.end - last.start).total_seconds():.0f} s" if last.start and last.end else ""
        typer.echo(
            f"last run: {last.name} ({last.deployment or 'facelogin sync'}) {last.state_name}, "
            f"started {local_time(last.start)}{took}"
        )
        if last.counts:
            typer.echo("  " + ", ".join(f"{v} {k}" for k, v in last.counts.items()))
        if last.message and not completed:
            typer.echo(f"  {last.message}")
        if last.url:
            typer.echo(f"  {last.url}")
    if upcoming is None:
        typer.echo("next nightly run: none scheduled (deploy nightly-sync, or its schedule is off)")
    else:
        nightly = out["next_nightly"]
        typer.echo(
            f"next nightly run: {nightly['local_time']} (schedule in {nightly['schedule_timezone']}; "
            f"in {nightly['in_hours']} h)"
        )
    raise typer.Exit(OK if completed else REJECTED)
