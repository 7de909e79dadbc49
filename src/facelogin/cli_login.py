"""Login-side commands (`facelogin login`, `facelogin calibrate`): light imports only."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the login commands to the `facelogin` app."""
