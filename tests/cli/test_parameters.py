"""The sync flow's parameters: what `facelogin sync` hands the flow (paths and choices, never a secret,
nothing through the environment), recorded on its run as Prefect records them, without FastAPI's
encoder for values that are already JSON."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from facelogin.bundle import read_bundle
from facelogin.orchestration.runs import load_sync_flow, sync_parameters, with_plain_parameters
from facelogin.settings import AwsAccess, Settings

CASES: list[dict[str, Any]] = [
    {"images": "/srv/images", "full": False, "dry_run": True, "allow_removals": 3, "prune": False},
    {"images": None, "ratio": 0.5},
    {},
    {"images": Path("/srv/images"), "full": True},  # not plain: Prefect's own encoder
    {"when": date(2026, 12, 5), "tags": ["a", "b"]},
]


@pytest.mark.parametrize("parameters", CASES)
def test_the_recorded_parameters_are_prefects(parameters: dict[str, Any]) -> None:
    from prefect import flow

    @flow
    def probe(**kwargs: Any) -> None: ...

    expected = probe.serialize_parameters(parameters)
    assert with_plain_parameters(probe).serialize_parameters(parameters) == expected


def test_the_loaded_sync_flow_records_plain_parameters_as_they_are() -> None:
    parameters = {"images": "/srv/i", "full": False, "dry_run": False, "allow_removals": 0, "prune": True}
    recorded = load_sync_flow().serialize_parameters(parameters)
    assert recorded == parameters and recorded is not parameters


def test_the_cli_gives_every_parameter_of_the_flow_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect stores a run's parameters and shows them in its UI: paths made absolute (the flow runs
    in the checkout) and the run's choices go there; the MongoDB URI and AWS keys do not."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        images=Path("images"), state_dir=Path("state"), bucket="faces",
        mongodb_uri=SecretStr("mongodb://sync:hunter2@db.example.org:27017"),
        aws=AwsAccess(access_key_id="AKIAEXAMPLE", secret_access_key=SecretStr("s3cret")),
    )  # fmt: skip
    choices = {"full": True, "dry_run": False, "allow_removals": 2, "prune": False}
    parameters = sync_parameters(settings, **choices)
    here = tmp_path.resolve()
    assert parameters == {"images": str(here / "images"), "state_dir": str(here / "state"), **choices}
    assert set(parameters) == set(load_sync_flow().parameters.properties)
    shown = json.dumps(parameters)
    for secret in ("hunter2", "s3cret", "AKIAEXAMPLE", "db.example.org"):
        assert secret not in shown


@pytest.mark.slow
def test_a_relative_state_dir_reaches_the_flow_as_a_parameter(
    faces: Path, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """FACELOGIN_STATE_DIR=state is taken from where the command runs, though the flow runs in the
    checkout: the command gives the flow the absolute path as a parameter, recorded on the run (it
    used to set FACELOGIN_STATE_DIR for the flow to read again)."""
    images = tmp_path / "images"
    shutil.copytree(faces / "images" / "Obama", images / "Obama")
    here = tmp_path / "here"
    here.mkdir()
    exe = Path(sys.executable).with_name("facelogin")
    done = subprocess.run(
        [str(exe), "sync", "--images", str(images), "--json"], cwd=here, capture_output=True, text=True,
        env=clean_env | {"FACELOGIN_STATE_DIR": "state"}, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    state = (here / "state").resolve()
    assert list(read_bundle(state / "bundle").usernames) == ["Obama"]
    database = Path(clean_env["PREFECT_HOME"]) / "prefect.db"  # the temporary API's, kept after it stops
    with contextlib.closing(sqlite3.connect(database)) as db:
        (recorded,) = [json.loads(row[0]) for row in db.execute("SELECT parameters FROM flow_run")]
    assert recorded == {"images": str(images.resolve()), "state_dir": str(state), "full": False,
                        "dry_run": False, "allow_removals": 0, "prune": False}  # fmt: skip
