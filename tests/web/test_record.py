"""`facelogin login` records its decisions in MongoDB when FACELOGIN_RECORD_LOGINS is on, so a login at
the Pi shows on the web profile; off, it imports nothing of MongoDB; a database that is down never
stops the login."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from typer.testing import CliRunner

from facelogin.adapters.embedded import NxServer, free_port
from facelogin.cli import app
from facelogin.settings import Settings
from tests.web.conftest import ENROLLED, MakeClient, frame_urls
from tests.web.synced import Encodings, write_state

FACELOGIN = Path(sys.executable).with_name("facelogin")


def login_cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, ["login", "--no-liveness", *args], env=env)


def test_a_pi_login_is_recorded_and_shows_on_the_web_profile(
    make_client: MakeClient, faces: Path, nx: NxServer, database: str, tmp_path: Path
) -> None:
    client = make_client()
    settings: Settings = client.settings  # type: ignore[attr-defined]
    env = {
        "FACELOGIN_RECORD_LOGINS": "1",
        "FACELOGIN_MONGODB_URI": nx.uri,
        "FACELOGIN_DATABASE": database,
        "FACELOGIN_STATE_DIR": str(settings.state_dir),
    }
    bundle = ["--bundle", str(settings.bundle_dir), "--cache-dir", str(tmp_path / "cache")]
    accepted = login_cli(env, *bundle, "--image", str(faces / "probes" / "Obama.jpg"))
    assert accepted.exit_code == 0, accepted.output
    group = login_cli(env, *bundle, "--image", str(faces / "groups" / "two_people.jpg"))
    assert group.exit_code == 1

    with MongoClient(nx.uri) as mongo:
        events = list(mongo[database]["logins"].find({}, {"_id": 0}).sort("time", 1))
    assert [(e["user"], e["decision"], e["reason"], e["source"]) for e in events] == [
        ("Obama", "accepted", None, "pi"),
        (None, "rejected", "several faces", "pi"),
    ]
    assert events[0]["client"]  # the Pi's host name

    assert (
        client.post("/login", json={"frames": frame_urls(faces / "probes" / "Obama.jpg")}).status_code == 200
    )
    previous = client.get("/profile").text.split('id="previous-login"')[1].split("</dd>")[0]
    assert f", at the Pi ({events[0]['client']})" in previous


def test_serve_records_each_decision_after_answering_it(
    faces: Path, encodings: Encodings, nx: NxServer, database: str, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path / "state", mongodb_uri=nx.uri, database=database)
    write_state(settings, faces / "images", encodings, ENROLLED)
    env = {"FACELOGIN_RECORD_LOGINS": "true", "FACELOGIN_MONGODB_URI": nx.uri, "FACELOGIN_DATABASE": database}
    requests = "\n".join(
        json.dumps({"image": str(faces / p)}) for p in ("probes/Obama.jpg", "groups/kit_with_rose.jpg")
    )
    served = CliRunner().invoke(
        app, ["login", "--no-liveness", "--serve", "--bundle", str(settings.bundle_dir),
              "--cache-dir", str(tmp_path / "c")],
        env=env, input=requests + "\n",
    )  # fmt: skip
    assert served.exit_code == 0, served.output
    with MongoClient(nx.uri) as mongo:
        decisions = [e["decision"] for e in mongo[database]["logins"].find().sort("time", 1)]
    assert decisions == ["accepted", "rejected"]


def test_a_database_that_is_down_does_not_stop_a_pi_login(
    faces: Path, encodings: Encodings, nx: NxServer, database: str, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path / "state", mongodb_uri=nx.uri, database=database)
    write_state(settings, faces / "images", encodings, ["Obama", "Biden"])
    env = {"FACELOGIN_RECORD_LOGINS": "1", "FACELOGIN_MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/"}
    result = login_cli(env, "--bundle", str(settings.bundle_dir), "--cache-dir", str(tmp_path / "c"),
                       "--image", str(faces / "probes" / "Obama.jpg"))  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout)["user"] == "Obama"
    assert "decision not recorded: MongoDB at 127.0.0.1:" in result.stderr
    assert "is unreachable" in result.stderr


def test_without_the_setting_a_login_imports_nothing_of_mongodb(
    faces: Path, encodings: Encodings, nx: NxServer, database: str, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path / "state", mongodb_uri=nx.uri, database=database)
    write_state(settings, faces / "images", encodings, ["Obama"])
    code = (
        "import sys\n"
        "from facelogin.cli import app\n"
        f"sys.argv = ['facelogin', 'login', '--no-liveness', '--bundle', {str(settings.bundle_dir)!r}, "
        f"'--cache-dir', {str(tmp_path / 'c')!r}, '--image', {str(faces / 'probes' / 'Obama.jpg')!r}]\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('pymongo', 'pydantic_settings', 'facelogin.audit') if m in sys.modules])\n"
    )
    env = {"FACELOGIN_MONGODB_URI": nx.uri, "FACELOGIN_DATABASE": database}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env(env), check=False)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    with MongoClient(nx.uri) as mongo:
        assert mongo[database]["logins"].count_documents({}) == 0


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("FACELOGIN_", "AWS_"))} | extra
