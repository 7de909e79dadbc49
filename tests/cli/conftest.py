"""Fixtures of the CLI tests: a new user's environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """A new user's environment: no FACELOGIN_*, AWS_* or Prefect API settings at all."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("FACELOGIN_", "AWS_", "PREFECT_"))}
    return keep | {
        "HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
