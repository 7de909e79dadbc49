"""The `facelogin` command line: sync the images folder, and (light) login commands for the Pi.

Kept light at import: Prefect, boto3 and pymongo are imported inside the commands that need them,
so `facelogin login` on a Pi starts fast and needs none of the pipeline's dependencies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from facelogin import cli_enroll, cli_login

app = typer.Typer(
    name="facelogin",
    help="Face login for a Raspberry Pi, kept in step with an images/<User>/ folder by a Prefect flow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        from facelogin import __version__

        typer.echo(__version__)
        raise typer.Exit()


def _ensure_flows_importable() -> None:
    """flows/ and tasks/ live at the top of the repository, beside src/."""
    root = Path(__file__).resolve().parents[2]
    if (root / "flows").is_dir() and str(root) not in sys.path:
        sys.path.insert(0, str(root))


@app.command()
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
    from facelogin.runtime import local_prefect_api, quiet_prefect_console

    _ensure_flows_importable()
    if as_json:
        quiet_prefect_console()
    from flows.sync_faces import SyncError, sync_faces

    try:
        with local_prefect_api():
            summary = sync_faces(images=str(images) if images else None, full=full)
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


cli_login.register(app)
cli_enroll.register(app)


def main() -> None:
    app()
