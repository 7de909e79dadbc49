"""The `facelogin` command line: one module per command group, each a thin layer over the library.

Kept light at import: Prefect, boto3 and pymongo are imported inside the commands that need them,
so `facelogin login` on a Pi starts fast and needs none of the pipeline's dependencies.
Exit codes follow one contract across commands (facelogin.exits): 0 ok, 1 rejected, 2 error.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import typer

from facelogin.cli import doctor, enroll, login, status, sync, users, web
from facelogin.exits import ERROR

app = typer.Typer(
    name="facelogin",
    help="Face login for a Raspberry Pi, kept in step with an images/<User>/ folder by a Prefect flow.\n\n"
    "Exit codes, every command: 0 ok/accepted, 1 rejected, 2 error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: rich markup would swallow the `[env ..., default ...]` hints as tags.
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from facelogin import __version__

        typer.echo(f"facelogin {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """Face login for a Raspberry Pi, kept in step with an images/<User>/ folder by a Prefect flow.

    Exit codes, every command: 0 ok/accepted, 1 rejected, 2 error.
    """


sync.register(app)
login.register(app)
enroll.register(app)
users.register(app)
doctor.register(app)
status.register(app)
web.register(app)


def main() -> None:
    """The console script: Typer's app, with crashes kept to the contract (exit 2, never 1)."""
    from facelogin.extras import missing_module_hint

    try:
        app(standalone_mode=True)
    except SystemExit:
        _exit_quickly()
        raise
    except ModuleNotFoundError as exc:
        typer.secho(f"facelogin: {missing_module_hint(exc.name)}", fg="red", err=True)
        sys.exit(ERROR)
    except Exception:  # noqa: BLE001 - an unexpected failure is an error (2), not a rejection (1)
        traceback.print_exc()
        sys.exit(ERROR)


def _exit_quickly() -> None:
    """Let the interpreter skip the last garbage collection of everything a command imported.

    At exit Python collects every object still alive: after a sync (Prefect, pydantic, boto3, pymongo)
    that alone took 0.3-0.7 s of a no-op run. Freezing them leaves their memory to the kernel; exit
    handlers (Prefect's drain of logs and events to the API, pymongo's) still run as before.
    """
    import gc

    gc.freeze()
