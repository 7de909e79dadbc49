"""`facelogin web` as a user starts it: what it says when it cannot, and the embedded database it shares."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facelogin.adapters.embedded import BORROW_LOCK
from facelogin.cli.web import _is_loopback
from facelogin.settings import Settings
from tests.web.browser import WebServer, clean_env, start_web
from tests.web.conftest import ENROLLED
from tests.web.synced import Encodings, write_state

FACELOGIN = Path(sys.executable).with_name("facelogin")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FACELOGIN), *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


@pytest.fixture
def embedded(faces: Path, encodings: Encodings, tmp_path: Path) -> Iterator[tuple[WebServer, dict[str, str]]]:
    state = tmp_path / "state"
    write_state(Settings(state_dir=state), faces / "images", encodings, ENROLLED)
    env = clean_env(tmp_path / "home", FACELOGIN_STATE_DIR=str(state))
    server = start_web(env, tmp_path)
    yield server, env
    server.stop()


@pytest.mark.slow
def test_on_embedded_defaults_other_commands_share_its_database(
    embedded: tuple[WebServer, dict[str, str]],
) -> None:
    server, env = embedded
    listed = run(env, "users", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [u["username"] for u in json.loads(listed.stdout)["users"]] == ENROLLED

    taken = run(env, "web", "--port", str(server.port))
    assert taken.returncode == 2
    assert f"cannot listen on 127.0.0.1:{server.port}" in taken.stderr and "Traceback" not in taken.stderr

    server.stop()  # SIGTERM, as systemd stops it
    assert server.process.returncode == 0, server.output()
    assert server.output().rstrip().endswith("facelogin web: stopped")
    assert not (Path(env["FACELOGIN_STATE_DIR"]) / "mongo" / "server.json").exists()  # stopped in order


def holds_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (Linux: its /proc/PID/fd links)."""
    target = str(path.resolve())
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return target in links


@pytest.mark.slow
def test_a_sync_borrowing_its_database_carries_on_when_it_is_killed(
    embedded: tuple[WebServer, dict[str, str]], faces: Path, tmp_path: Path, prefect_api: str
) -> None:
    """`facelogin web` killed (SIGKILL: no time to wait for its borrowers) in the middle of a sync that
    uses its embedded MongoDB: the sync takes the database over at once, says so in one line, and
    finishes as if nothing happened (no ServerSelectionTimeoutError half a minute later).

    The sync talks to the worker's Prefect API (as on a machine where a server runs): what is
    killed is the web, not the sync, and a temporary API would only add ~9 s of CPU."""
    from tests.cli.test_crash import workers

    server, env = embedded
    images = tmp_path / "images"
    for user in ENROLLED:
        shutil.copytree(faces / "images" / user, images / user)
    served = env | {"PREFECT_API_URL": prefect_api}
    sync = subprocess.Popen([str(FACELOGIN), "sync", "--images", str(images), "--json", "--full"], env=served,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    mongo = Path(env["FACELOGIN_STATE_DIR"]) / "mongo"
    # Encoding (its workers up: they may start with Prefect, before the database is opened), and
    # borrowing the web's database (holding its borrow lock).
    while not (workers(sync.pid) and holds_open(sync.pid, mongo / BORROW_LOCK)):
        assert sync.poll() is None and time.monotonic() < deadline, sync.communicate()
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    out, err = sync.communicate(timeout=300)
    assert sync.returncode == 0, f"sync pid {sync.pid}, web pid {server.process.pid}: {err[-3000:]}"
    assert "took it over" in err and "Traceback" not in err and "ServerSelectionTimeout" not in err, err
    summary = json.loads(out)
    assert (summary["users"], summary["errors"]) == (len(ENROLLED), [])
    assert time.monotonic() - killed < 120
    state = Path(env["FACELOGIN_STATE_DIR"]) / "mongo"
    assert not (state / "server.json").exists()  # the server it took over is stopped with it
    listed = run(env, "users", "--json")  # and the database is free for the next command
    assert listed.returncode == 0, listed.stderr
    assert [u["username"] for u in json.loads(listed.stdout)["users"]] == ENROLLED


@pytest.mark.slow
def test_ctrl_c_stops_it_in_order_without_a_traceback(embedded: tuple[WebServer, dict[str, str]]) -> None:
    server, env = embedded
    server.stop(signal.SIGINT)
    assert server.process.returncode == 0, server.output()
    assert "Traceback" not in server.output()
    assert server.output().rstrip().endswith("facelogin web: stopped")
    assert not (Path(env["FACELOGIN_STATE_DIR"]) / "mongo" / "server.json").exists()


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    done = run(clean_env(tmp_path), "web", "--certfile", str(tmp_path / "cert.pem"))
    assert done.returncode == 2 and "give both --certfile and --keyfile" in done.stderr


def test_an_address_that_does_not_resolve_is_refused(tmp_path: Path) -> None:
    done = run(clean_env(tmp_path), "web", "--host", "no-such-host.invalid", "--port", "8000")
    assert done.returncode == 2 and "cannot listen on no-such-host.invalid" in done.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("192.0.2.1", False),
     ("pi.local", False)],
)  # fmt: skip
def test_only_loopback_addresses_get_the_camera_over_plain_http(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback


def test_the_port_check_does_not_hold_the_port() -> None:
    from facelogin.cli.web import _cannot_listen

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert "cannot listen on 127.0.0.1" in (_cannot_listen("127.0.0.1", port) or "")
    assert _cannot_listen("127.0.0.1", port) is None
