"""The temporary Prefect API that `facelogin sync` starts when no PREFECT_API_URL is set."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import httpx
import pytest

from facelogin.orchestration.api import START_LOCK, TemporaryServer, local_prefect_api

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


def test_blocks_saved_and_read_through_a_temporary_server_on_a_new_database(
    tmp_path: Path, migrated_prefect_db: Path
) -> None:
    """The temporary server skips Prefect's block-type registration at start (half its start-up):
    a block saved through it registers its own type, and a later server on the same database reads it."""
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from tests.servers import seed_prefect_home

    home = tmp_path / "prefect"
    seed_prefect_home(home, migrated_prefect_db)
    for step in ("save", "load"):
        with (
            temporary_settings(updates={PREFECT_HOME: home}, restore_defaults={PREFECT_API_URL}),
            local_prefect_api() as url,
        ):
            types = httpx.post(f"{url}/block_types/filter", json={}, timeout=10).json()
            if step == "save":
                assert not any(t["slug"] == "secret" for t in types), "registered at start after all"
                Secret(value="mongodb://db.example:27017").save("facelogin-mongodb")
            else:
                assert Secret.load("facelogin-mongodb").get() == "mongodb://db.example:27017"
