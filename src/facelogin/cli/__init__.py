"""The `facelogin` command line: one module per command group, each a thin layer over the library.

Kept light at import: Prefect, boto3 and pymongo are imported inside the commands that need them,
so `facelogin login` on a Pi starts fast and needs none of the pipeline's dependencies.
"""

from __future__ import annotations

from typing import Annotated

import typer

from facelogin.cli import enroll, login, sync

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


sync.register(app)
login.register(app)
enroll.register(app)


def main() -> None:
    app()
