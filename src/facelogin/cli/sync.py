"""`facelogin sync`: run the sync flow on this machine and print what it did."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)


def sync(
    images: Annotated[
        Path | None,
        typer.Option(
            "--images", help="Images root, one folder per user [env FACELOGIN_IMAGES, default ./images]."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Re-process every photo, not only new or changed ones.")
    ] = False,
) -> None:
    """Sync the images folder: train encodings, upload thumbnails, upsert MongoDB, publish the bundle."""
    from facelogin.cli import runs
    from facelogin.settings import Settings
    from facelogin.sync.outcome import SyncError

    if as_json:
        runs.quiet_prefect_console()
    try:
        settings = Settings() if images is None else Settings(images=images)
        for message in settings.deprecations:
            typer.secho(f"warning: {message}", fg="yellow", err=True)
        # The flow runs in the project directory: paths given here are relative to where we are.
        if not settings.state_dir.is_absolute():
            os.environ["FACELOGIN_STATE_DIR"] = str(settings.state_dir.resolve())
        parameters = {"images": str(settings.images.resolve()), "full": full}
        with runs.local_prefect_api():
            summary = runs.run_sync(parameters)
    except SyncError as exc:
        _fail(str(exc), exc.summary, as_json)
    except Exception as exc:  # noqa: BLE001 - the CLI's job is to say what failed, in one line
        _fail(f"{type(exc).__name__}: {exc}", None, as_json)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        _print_summary(summary)


def _fail(message: str, summary: dict[str, Any] | None, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": message, "summary": summary}, indent=2, default=str))
    typer.secho(f"sync failed: {message}", fg="red", err=True)
    raise typer.Exit(1)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="facelogin sync", show_header=False)
    for key in ("users", "photos", "encoded", "unchanged", "uploaded", "upserted"):
        table.add_row(key, str(summary[key]))
    table.add_row("rejected", str(len(summary["rejected"])))
    bundle = summary["bundle"]
    table.add_row("bundle", f"{bundle['version']} ({bundle['users']} users) in {bundle['path']}")
    table.add_row("seconds", ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items()))
    console.print(table)
    for item in summary["rejected"]:
        console.print(f"[yellow]rejected[/] {item['file']}: {item['reason']}")
