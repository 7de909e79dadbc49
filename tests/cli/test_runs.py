"""The temporary Prefect API that `facelogin sync` starts when no PREFECT_API_URL is set."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import httpx
import pytest

from facelogin.orchestration.api import START_LOCK, TemporaryServer

pytestmark = pytest.mark.slow


def test_a_start_waits_while_another_command_starts_the_same_prefect_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first starts at once would both migrate one SQLite database ("duplicate column name")."""
    from prefect.settings import PREFECT_HOME, temporary_settings

    home = tmp_path / "prefect"
    home.mkdir()
    server = TemporaryServer()
    failure: list[BaseException] = []

    def start() -> None:
        try:
            with temporary_settings(updates={PREFECT_HOME: home}):
                server.start()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failure.append(exc)

    with open(home / START_LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another command is starting its server
        starter = threading.Thread(target=start)
        starter.start()
        time.sleep(1.5)
        assert server.process is None, "started while another start held PREFECT_HOME"
    starter.join(timeout=240)
    try:
        assert not failure, failure
        assert server.process is not None and server.process.poll() is None
        assert httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200
        assert (home / "prefect.db").exists()
    finally:
        server.stop()
