"""The operator's commands through the CLI runner: users, remove, profile-url, doctor, status, --version,
help that keeps its hints, and the exit-code contract (0 ok, 1 rejected, 2 error) across commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from facelogin import __version__
from facelogin.adapters.catalog import Catalog
from facelogin.adapters.embedded import NxServer, free_port
from facelogin.adapters.mongo import mongo_client
from facelogin.cli import app

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"facelogin {__version__}"


@pytest.mark.parametrize(
    ("command", "hints"),
    [
        ("sync", ["[env FACELOGIN_IMAGES, default: the root the sync-now deployment reads, else the root"]),
        ("login", ["FACELOGIN_BUNDLE", "~/.facelogin/bundle", "[default ~/.facelogin/login-cache]"]),
        ("enroll", ["[env FACELOGIN_IMAGES,"]),
        ("users", ["[env FACELOGIN_IMAGES,"]),
        ("remove", ["--yes", "--sync"]),
        ("doctor", ["OK, WARN or FAIL"]),
        ("status", ["--json"]),
    ],
)
def test_help_keeps_its_hints(command: str, hints: list[str]) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for hint in hints:
        assert hint in text, text


def test_users_json_lists_synced_unsynced_and_gone_users(enrolled: dict[str, Any]) -> None:
    result = invoke("users", "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    rows = {r["username"]: r for r in out["users"]}
    assert set(rows) == {"Ann", "Bob", "Cy", "Dee"}
    assert (rows["Ann"]["photos"], rows["Ann"]["encoded"], rows["Ann"]["rejected"]) == (2, 1, 1)
    assert rows["Ann"]["profile_image"] == f"s3://{enrolled['bucket']}/thumbs/256/Ann/ann_01.jpg"
    assert rows["Ann"]["last_sync"] and rows["Ann"]["state"] == "synced"
    assert rows["Cy"]["state"] == "not synced yet" and rows["Cy"]["photos"] == 1
    assert rows["Dee"]["state"].startswith("folder gone") and rows["Dee"]["folder"] is None
    assert out["store"] == f"s3://{enrolled['bucket']}" and "/facelogin_" in out["catalog"]

    table = runner.invoke(app, ["users"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "Ann" in table.stdout and "not synced yet" in table.stdout


def test_profile_url_is_a_presigned_link_that_serves_the_thumbnail(enrolled: dict[str, Any]) -> None:
    result = invoke("profile-url", "Bob", "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["key"] == "thumbs/256/Bob/bob_01.jpg" and out["expires_in"] == 3600
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(out["url"], timeout=10) as response:  # a real GET of the signed URL
        assert response.read() == b"\xff\xd8\xffBob"
    plain = invoke("profile-url", "Bob", "--size", "128")
    assert plain.exit_code == 0 and "thumbs/128/Bob/bob_01.jpg" in plain.stdout.strip()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["profile-url", "Nobody"], 1, "no user 'Nobody' in MongoDB"),
        (["profile-url", "Bob", "--size", "64"], 1, "no 64 px thumbnail for Bob"),
        (["remove", "Nobody", "--yes"], 1, "does not exist"),
        (["remove", "Ann"], 2, "needs confirmation: run with --yes"),
        (["remove", "../etc", "--yes"], 2, "is not a user name"),
    ],
)
def test_user_commands_failure_paths(
    enrolled: dict[str, Any], args: list[str], code: int, message: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert (enrolled["images"] / "Ann").is_dir()  # nothing removed without --yes


def test_remove_yes_deletes_the_folder_and_says_the_data_goes_at_the_next_sync(
    enrolled: dict[str, Any],
) -> None:
    result = invoke("remove", "Ann", "--yes", "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["removed_photos"] == 1 and out["sync"] is None
    assert out["images"] == {"path": str(enrolled["images"]), "source": "FACELOGIN_IMAGES",
                             "reason": "set by FACELOGIN_IMAGES", "warning": None}  # fmt: skip
    assert not (enrolled["images"] / "Ann").exists() and (enrolled["images"] / "Bob").is_dir()


def test_users_with_mongodb_down_is_one_line_and_exit_2(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("FACELOGIN_MONGODB_URI", f"mongodb://sync:hunter2@127.0.0.1:{port}/")
    for command in (["users"], ["profile-url", "Ann"]):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert f"127.0.0.1:{port}" in result.stderr and "refused" in result.stderr
        assert "hunter2" not in result.output


def _doctor(env: dict[str, str], cwd: Path) -> tuple[int, dict[str, Any], str]:
    exe = Path(sys.executable).with_name("facelogin")
    done = subprocess.run([str(exe), "doctor", "--json"], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    return done.returncode, json.loads(done.stdout), done.stderr


def test_doctor_on_embedded_defaults_warns_and_passes(images: Path, clean_env: dict[str, str]) -> None:
    code, out, _ = _doctor(clean_env | {"FACELOGIN_IMAGES": str(images)}, images)

    status = {c["name"]: c["status"] for c in out["checks"]}
    assert code == 0 and out["ok"] is True, out
    assert status["settings"] == "OK" and status["images root"] == "OK"
    assert status["MongoDB"] == "WARN" and status["object store"] == "WARN"
    assert status["Prefect API"] == "WARN" and status["bundle"] == "WARN"
    assert status["liveness"] == "OK"
    assert all(c["fix"] for c in out["checks"] if c["status"] != "OK")


def test_doctor_warns_when_liveness_is_off(images: Path, clean_env: dict[str, str]) -> None:
    env = clean_env | {"FACELOGIN_IMAGES": str(images), "FACELOGIN_LIVENESS": "off"}
    code, out, _ = _doctor(env, images)
    check = next(c for c in out["checks"] if c["name"] == "liveness")
    assert code == 0 and check["status"] == "WARN"
    assert "a photo of an enrolled person logs in as them" in check["detail"]
    assert "FACELOGIN_LIVENESS" in check["fix"]


def test_doctor_fails_on_mongodb_down_and_an_unknown_images_root(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env | {"FACELOGIN_MONGODB_URI": f"mongodb://u:hunter2@127.0.0.1:{port}/"}
    code, out, stderr = _doctor(env, tmp_path)

    checks = {c["name"]: c for c in out["checks"]}
    assert code == 1 and out["ok"] is False
    assert checks["MongoDB"]["status"] == "FAIL" and f"127.0.0.1:{port}" in checks["MongoDB"]["detail"]
    assert "FACELOGIN_MONGODB_URI" in checks["MongoDB"]["detail"]
    assert checks["images root"]["status"] == "FAIL" and "FACELOGIN_IMAGES" in checks["images root"]["fix"]
    assert "hunter2" not in json.dumps(out) + stderr


def test_doctor_fails_on_a_corrupt_bundle(images: Path, clean_env: dict[str, str], tmp_path: Path) -> None:
    bundle = tmp_path / "state" / "bundle"
    bundle.mkdir(parents=True)
    (bundle / "latest.json").write_text("{not json")
    env = clean_env | {"FACELOGIN_IMAGES": str(images), "FACELOGIN_STATE_DIR": str(tmp_path / "state")}
    code, out, _ = _doctor(env, tmp_path)
    checks = {c["name"]: c for c in out["checks"]}
    assert (
        code == 1 and checks["bundle"]["status"] == "FAIL" and "not valid JSON" in checks["bundle"]["detail"]
    )


def test_login_finds_the_bundle_where_the_sync_publishes_it(
    faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facelogin.adapters.stores import DirStore
    from facelogin.bundle import build_bundle, publish_bundle
    from facelogin.faces import encode_face

    encodings = {"Obama": [encode_face(p).encoding for p in sorted((faces / "images" / "Obama").iterdir())]}
    data, manifest = build_bundle(encodings, {}, "2026-01-01T00:00:00+00:00", {"detector": "hog"})  # type: ignore[arg-type]
    publish_bundle(DirStore(tmp_path / "state" / "bundle"), "", data, manifest)
    monkeypatch.setenv("FACELOGIN_STATE_DIR", str(tmp_path / "state"))

    result = invoke(
        "login",
        "--no-liveness",
        "--image",
        str(faces / "probes" / "Obama.jpg"),
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["user"] == "Obama"


def test_a_missing_module_is_exit_2_with_the_pip_command(tmp_path: Path) -> None:
    """As on a Pi installed without the s3 extra: boto3 cannot be imported."""
    probe = (
        "import sys; sys.modules['boto3'] = None\n"
        "sys.argv = ['facelogin', 'login', '--no-liveness', '--bundle', 's3://faces/encodings/latest',"
        " '--image', 'x.jpg',"
        f" '--cache-dir', {str(tmp_path)!r}]\n"
        "from facelogin.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "boto3" in done.stderr and "-m pip install boto3" in done.stderr and "facelogin[s3]" in done.stderr
    assert json.loads(done.stdout)["decision"] == "error"


def test_an_unexpected_crash_is_exit_2_not_1(tmp_path: Path) -> None:
    probe = (
        "import sys, facelogin.cli.status as s\n"
        "def boom(*a, **k): raise RuntimeError('boom')\n"
        "s.local_time = boom\n"
        "import facelogin.orchestration.api as a, facelogin.orchestration.deployments as d\n"
        "a.api_health = lambda: None; a.api_url = lambda: 'http://127.0.0.1:9/api'\n"
        "d.last_run = lambda: None; d.read_deployment = lambda name: None\n"
        "d.next_run = lambda: (__import__('datetime').datetime.now(__import__('datetime').UTC), 'UTC')\n"
        "sys.argv = ['facelogin', 'status']\n"
        "from facelogin.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2 and "RuntimeError: boom" in done.stderr


def test_nx_fixture_is_reachable(nx: NxServer) -> None:
    """The users fixtures write through the adapter to the session's nx-27017 server."""
    assert Catalog(mongo_client(nx.uri)["probe"]).users.count_documents({}) == 0


@pytest.mark.slow
def test_remove_with_sync_removes_the_user_everywhere(
    faces: Path, sync_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = tmp_path / "images"
    for user in ("Obama", "Biden"):
        shutil.copytree(faces / "images" / user, images / user)
    monkeypatch.setenv("FACELOGIN_IMAGES", str(images))
    first = invoke("sync", "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["store"] == f"s3://{sync_env['FACELOGIN_BUCKET']}"
    assert (
        summary["catalog"]
        == f"{sync_env['FACELOGIN_MONGODB_URI'].split('//')[1].rstrip('/')}/"
        + (sync_env["FACELOGIN_DATABASE"])
    )

    result = invoke("remove", "Biden", "--yes", "--sync", "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["sync"]["removed_users"] == 1 and out["sync"]["deleted_objects"] == 4
    assert out["sync"]["bundle"]["users"] == 1 and not (images / "Biden").exists()
    users = json.loads(invoke("users", "--json").stdout)["users"]
    assert [u["username"] for u in users] == ["Obama"]


def test_enroll_refuses_a_relative_default_it_cannot_resolve(
    faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("FACELOGIN_IMAGES", raising=False)
    monkeypatch.setenv("FACELOGIN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # not the checkout, and no Prefect server to ask
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = invoke(
            "enroll", "Biden", "--from", str(faces / "images" / "Biden"), "--no-trigger", "--json"
        )

    assert result.exit_code == 2, result.output
    assert "cannot tell which images root the sync reads" in json.loads(result.stdout)["error"]
    assert not (tmp_path / "images").exists()

    monkeypatch.setenv("FACELOGIN_IMAGES", str(tmp_path / "root"))
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        done = invoke("enroll", "Biden", "--from", str(faces / "images" / "Biden"), "--no-trigger")
    assert done.exit_code == 0, done.output
    assert f"images root: {tmp_path / 'root'} (set by FACELOGIN_IMAGES)" in done.stderr
    assert len(list((tmp_path / "root" / "Biden").iterdir())) == 2
