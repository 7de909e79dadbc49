"""What the operator's commands share: settings (with their blocks), one-line failures, JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from facelogin.exits import ERROR

# Options every command that takes them declares the same way.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ROOT_ORDER = (
    "env FACELOGIN_IMAGES, default: the root the sync-now deployment reads, else the root the last "
    "sync read, else ./images in the checkout"
)


ImagesOption = Annotated[
    Path | None, typer.Option("--images", help=f"Images root, one folder per user [{ROOT_ORDER}].")
]


def fail(command: str, message: str, as_json: bool, code: int = ERROR, **extra: Any) -> NoReturn:
    """Say what failed in one line on stderr (and as JSON on stdout with --json), then exit `code`."""
    if as_json:
        echo_json({"ok": False, "error": message, **extra})
    typer.secho(f"facelogin {command}: {message}", fg="red", err=True)
    raise typer.Exit(code)


def usage(command: str, message: str) -> NoReturn:
    """A usage mistake (options that do not go together, a value out of range): what to give, exit 2."""
    typer.secho(f"facelogin {command}: {message} (see `facelogin {command} --help`)", fg="red", err=True)
    raise typer.Exit(ERROR)


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def load_settings(
    command: str, as_json: bool, blocks: bool = True, failure: dict[str, Any] | None = None, **overrides: Any
) -> Any:
    """The one way every command loads its settings: the environment (and `overrides`, a command's
    own options), then the Prefect blocks they name; a bad value exits 2 naming the variable and
    what it accepts (facelogin.settings.load_settings; `failure`: more keys for --json), a renamed
    one is a warning."""
    from facelogin.settings import SettingsError
    from facelogin.settings import load_settings as from_environment

    try:
        settings = from_environment(**overrides)
    except SettingsError as exc:
        fail(command, f"invalid setting: {exc}", as_json, **(failure or {}))
    for message in settings.deprecations:
        typer.secho(f"warning: {message}", fg="yellow", err=True)
    if blocks and settings.block_names:
        from facelogin.orchestration.blocks import BlockError, settings_with_blocks

        try:
            settings = settings_with_blocks(settings)
        except BlockError as exc:
            fail(command, str(exc), as_json, **(failure or {}))
    return settings


def local_time(moment: Any) -> str:
    """`2026-11-29 02:00 GMT`: a datetime or ISO time in this machine's time zone, with the zone's name.

    A time without a zone is UTC (MongoDB hands datetimes back naive); `-` when there is none.
    """
    from datetime import UTC, datetime

    if isinstance(moment, str) and moment:
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if not isinstance(moment, datetime):
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")
