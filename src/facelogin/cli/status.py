"""`facelogin status`: the last sync run (state, time, counts) and the next nightly run.

From the Prefect server when PREFECT_API_URL is set; without one, from this machine: the last
`facelogin sync` recorded in the state directory (facelogin.sync.lastrun) and the bundle it published.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

import typer

from facelogin.cli.common import JsonFlag, local_time
from facelogin.exits import OK, REJECTED


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    as_json: JsonFlag = False,
) -> None:
    """Show the last sync run (state, time, counts) and when the nightly run is next, in local time.

    Without a Prefect server (PREFECT_API_URL), the last `facelogin sync` on this machine and the
    bundle it published. Exit 0 the last run completed (or none has run yet), 1 it did not
    complete, 2 error (a server that does not answer).
    """
    from facelogin.cli.common import echo_json, fail, load_settings
    from facelogin.cli.roots import images_root
    from facelogin.orchestration import api, deployments

    settings = load_settings("status", as_json, blocks=False)
    root = images_root(None, settings)
    if not as_json:
        typer.echo(root.line, err=True)
    if not api.api_url():
        _local_status(settings, root, as_json)
    if problem := api.api_health():
        fail(
            "status", f"{problem}: status is read from the Prefect server that runs the deployments", as_json
        )
    try:
        last = deployments.last_run()
        upcoming = deployments.next_run()
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        fail("status", f"cannot read runs from {api.api_url()}: {type(exc).__name__}: {exc}", as_json)
    completed = last is None or last.state == "COMPLETED"
    out: dict[str, Any] = {"ok": completed, "api": api.api_url(), "images_root": root.as_dict(),
                           "last_run": None, "next_nightly": None}  # fmt: skip
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


def _local_status(settings: Any, root: Any, as_json: bool) -> NoReturn:
    """The last `facelogin sync` recorded on this machine, and the bundle here; exits."""
    from facelogin.cli.common import echo_json
    from facelogin.sync import lastrun

    state_dir = settings.state_dir.expanduser()
    record = lastrun.load(state_dir)
    last = record["last_run"] if record else None
    bundle = _local_bundle(settings.bundle_dir.expanduser())
    completed = last is None or last["exit_code"] == 0
    if as_json:
        echo_json(
            {
                "ok": completed,
                "api": None,
                "images_root": root.as_dict(),
                "last_run": last | {"local_time": local_time(last["started"])} if last else None,
                "recorded_in": str(lastrun.path_in(state_dir)),
                "bundle": bundle,
                "next_nightly": None,
            }
        )
        raise typer.Exit(OK if completed else REJECTED)
    if last is None:
        typer.echo(f"last run: none recorded in {state_dir} (run `facelogin sync --images DIR`)")
    else:
        typer.echo(
            f"last run: facelogin sync on this machine, {last['state']} (exit {last['exit_code']}), "
            f"started {local_time(last['started'])}{_took(last['started'], last['finished'])}"
        )
        if last["counts"]:
            always = ("users", "photos", "encoded", "unchanged", "rejected", "uploaded")
            shown = {k: v for k, v in last["counts"].items() if k in always or v}
            typer.echo("  " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in shown.items()))
        if last["error"]:
            typer.echo(f"  {last['error']}")
        typer.echo(f"  images root {last['images']}")
        if last["counts"]:  # the run got as far as writing: where to
            written = last["bundle"] or {}
            typer.echo(f"  store {last['store']}; MongoDB {last['catalog']}")
            typer.echo(f"  bundle {written.get('version')} published to {written.get('location')}")
    if bundle is None:
        typer.echo(f"bundle here: none in {settings.bundle_dir} yet")
    elif bundle.get("error"):
        typer.echo(f"bundle here: {bundle['error']}")
    else:
        typer.echo(
            f"bundle here: {bundle['version']} ({bundle['users']} users), made {bundle['local_time']}, "
            f"in {bundle['path']}"
        )
    typer.echo(
        "next nightly run: none without a Prefect server (PREFECT_API_URL): this is what `facelogin sync` "
        "did on this machine"
    )
    raise typer.Exit(OK if completed else REJECTED)


def _took(started: str, finished: str) -> str:
    try:
        seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except (TypeError, ValueError):
        return ""
    return f", took {seconds:.0f} s"


def _local_bundle(folder: Any) -> dict[str, Any] | None:
    """The bundle published on this machine (its manifest, not its encodings), or None when none is."""
    from facelogin.adapters.stores import open_store
    from facelogin.bundle import LATEST, BundleError, read_manifest

    if not (folder / LATEST).is_file():
        return None
    try:
        manifest = read_manifest(open_store(folder))
    except BundleError as exc:
        return {"path": str(folder), "error": str(exc)}
    created = manifest.get("created_at")
    return {
        "path": str(folder),
        "version": manifest["version"],
        "users": len(manifest.get("users") or []),
        "created_at": created,
        "local_time": local_time(created),
    }
