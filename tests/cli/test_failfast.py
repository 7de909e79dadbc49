"""Mistakes found before Prefect starts: one line on stderr naming the setting, exit 2, nothing changed."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from facelogin.adapters.embedded import free_port
from facelogin.orchestration.api import START_LOCK
from tests.cli.test_cli import facelogin
from tests.conftest import AWS_ENV
from tests.servers import MotoServer


@pytest.fixture
def env(clean_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return clean_env | {"FACELOGIN_STATE_DIR": str(tmp_path / "state")}


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A server that accepts connections and never answers (a hung proxy, a stuck load balancer)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for sock in held:
        sock.close()


def prefect_started(env: dict[str, str]) -> bool:
    """Whether a command started its temporary Prefect API (each start takes this lock file)."""
    return (Path(env["PREFECT_HOME"]) / START_LOCK).exists()


def flow_runs(images: Path) -> int:
    """The flow runs of `images` on the worker's Prefect API (served_env), newest first."""
    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50)
    return sum(1 for run in runs if run.parameters.get("images") == str(images))


def failed_line(done: object) -> str:
    """The one line of a refusal (besides the line naming the images root read, when one was)."""
    lines = [
        line
        for line in done.stderr.splitlines()  # type: ignore[attr-defined]
        if line.strip() and not line.startswith("images root: ")
    ]
    assert done.returncode == 2, done.stderr  # type: ignore[attr-defined]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr  # type: ignore[attr-defined]
    return lines[0]


def test_a_mongodb_that_refuses_names_the_setting_and_host_not_the_password(
    images: Path, env: dict[str, str]
) -> None:
    port = free_port()
    env |= {"FACELOGIN_MONGODB_URI": f"mongodb://sync:hunter2@127.0.0.1:{port}/?authSource=admin"}
    line = failed_line(facelogin("sync", "--images", str(images), env=env))
    assert "FACELOGIN_MONGODB_URI" in line and f"127.0.0.1:{port}" in line and "refused" in line
    assert "hunter2" not in line and "Topology" not in line


def test_a_mongodb_host_that_does_not_resolve_is_named(images: Path, env: dict[str, str]) -> None:
    env |= {"FACELOGIN_MONGODB_URI": "mongodb://db.no-such-host.invalid:27017/"}
    line = failed_line(facelogin("sync", "--images", str(images), env=env))
    assert "db.no-such-host.invalid:27017" in line and "cannot be found" in line


def test_an_s3_endpoint_that_never_answers_fails_in_seconds(
    images: Path, env: dict[str, str], silent_endpoint: str
) -> None:
    env |= {**AWS_ENV, "AWS_ENDPOINT_URL": silent_endpoint, "FACELOGIN_BUCKET": "faces"}
    line = failed_line(facelogin("sync", "--images", str(images), env=env, timeout=120))
    assert silent_endpoint in line and "did not answer" in line


def test_an_s3_endpoint_that_is_down_is_named(images: Path, env: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    env |= {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint, "FACELOGIN_BUCKET": "faces"}
    line = failed_line(facelogin("sync", "--images", str(images), env=env))
    assert endpoint in line and "AWS_ENDPOINT_URL" in line


def test_a_bucket_that_does_not_exist_is_named(images: Path, env: dict[str, str], moto: MotoServer) -> None:
    env |= {**AWS_ENV, "AWS_ENDPOINT_URL": moto.url, "FACELOGIN_BUCKET": "no-such-bucket"}
    line = failed_line(facelogin("sync", "--images", str(images), env=env))
    assert "bucket 'no-such-bucket' does not exist" in line and "FACELOGIN_BUCKET" in line


@pytest.mark.parametrize(
    ("setup", "says"),
    [("missing", "does not exist"), ("empty", "holds no user folders"), ("user-folder", "one user's folder")],
)
def test_an_images_root_that_looks_wrong_is_refused(
    setup: str, says: str, faces: Path, env: dict[str, str], tmp_path: Path
) -> None:
    root = {"missing": tmp_path / "gone", "empty": tmp_path / "empty", "user-folder": faces / "images/Obama"}[
        setup
    ]
    if setup == "empty":
        root.mkdir()
    line = failed_line(facelogin("sync", "--images", str(root), env=env))
    assert str(root) in line and says in line and not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["sync", "--images", "IMAGES"],
        ["sync", "--images", "IMAGES", "--json"],
        ["users", "--images", "IMAGES"],
        ["remove", "Obama", "--images", "IMAGES", "--yes"],
        ["profile-url", "Obama"],
        ["status"],
        ["enroll", "Obama", "--from", "IMAGES/Obama", "--images", "IMAGES"],
        ["web"],
    ],
    ids=lambda c: " ".join(c),
)
def test_a_setting_with_a_typo_names_the_variable_and_what_it_accepts(
    command: list[str], images: Path, env: dict[str, str]
) -> None:
    """Every command loads its settings one way: the same one line, exit 2, before anything else."""
    env |= {"FACELOGIN_URL_MODE": "presign"}
    done = facelogin(*[a.replace("IMAGES", str(images)) for a in command], env=env)
    line = failed_line(done)
    assert line.startswith(f"facelogin {command[0]}: invalid setting: FACELOGIN_URL_MODE")
    assert "'presigned', 'public-acl' or 'base-url'" in line and "presign" in line
    if "--json" in command:
        assert json.loads(done.stdout) == {"ok": False, "error": line.split(": ", 1)[1], "summary": None}
    assert (images / "Obama").is_dir()  # nothing removed on the strength of a typo


def test_doctor_names_a_setting_with_a_typo_as_a_failed_check(images: Path, env: dict[str, str]) -> None:
    env |= {"FACELOGIN_URL_MODE": "presign"}
    done = facelogin("doctor", "--json", "--images", str(images), env=env)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert done.returncode == 1 and checks["settings"]["status"] == "FAIL"
    assert (
        "FACELOGIN_URL_MODE" in checks["settings"]["detail"] and "'presigned'" in checks["settings"]["detail"]
    )


def test_require_remote_on_embedded_defaults_is_refused_before_prefect_starts(
    images: Path, env: dict[str, str], tmp_path: Path
) -> None:
    env |= {"FACELOGIN_REQUIRE_REMOTE": "1"}
    line = failed_line(facelogin("sync", "--images", str(images), env=env))
    assert not prefect_started(env)  # no Prefect API, no flow run: the CLI knows
    assert "FACELOGIN_REQUIRE_REMOTE is set but this run has embedded defaults" in line
    assert "FACELOGIN_BUCKET" in line and "FACELOGIN_MONGODB_URI" in line
    assert not (tmp_path / "state" / "mongo").exists()


@pytest.mark.slow
def test_a_mass_removal_is_refused_in_one_line_before_the_flow_starts(
    faces: Path, served_env: dict[str, str], tmp_path: Path
) -> None:
    env = served_env | {"FACELOGIN_STATE_DIR": str(tmp_path / "state")}
    images = tmp_path / "images"
    for user in ("Biden", "Obama", "Rose_Leslie"):
        (images / user).mkdir(parents=True)
        shutil.copy(sorted((faces / "images" / user).glob("*"))[0], images / user)
    first = facelogin("sync", "--images", str(images), "--json", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.rmtree(images / "Biden")
    shutil.rmtree(images / "Obama")

    assert flow_runs(images) == 1
    line = failed_line(facelogin("sync", "--images", str(images), env=env))
    assert flow_runs(images) == 1, line  # decided before a flow run starts
    assert "would remove 2 of 3 users (Biden, Obama)" in line and "--allow-removals 2" in line

    refused = facelogin("sync", "--images", str(images), "--json", env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert json.loads(refused.stdout)["error"].startswith("this run would remove 2 of 3 users")

    confirmed = facelogin("sync", "--images", str(images), "--json", "--allow-removals", "2", env=env)
    assert confirmed.returncode == 0, confirmed.stderr[-3000:]
    assert json.loads(confirmed.stdout)["removed_users"] == 2
    assert flow_runs(images) == 2
