"""The operator's view matches reality: after the README's first command every command names the
images root that sync read, `users` predicts only what the sync's guard would do, its table reads at
80 columns, and `status` without a Prefect server shows the last local run and the bundle here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from facelogin.bundle import read_bundle
from facelogin.cli import app

ROOT = Path(__file__).resolve().parents[2]  # the checkout: where the README's commands run
ZONE = "America/New_York"  # not this machine's zone, so that local time is seen to be applied
runner = CliRunner()


def facelogin(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("facelogin")
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def column(lines: list[str], header: str, until: str | None = None) -> str:
    """The text of one column of the users table (from its header to the header `until`), its wrapped
    pieces joined. A header may wrap too: its first word is looked for on the header lines."""
    head = next(i for i, line in enumerate(lines) if line.startswith("user "))
    first = header.split()[0]
    start = next(lines[i].index(first) for i in (head, head - 1) if first in lines[i])
    end = lines[head].index(until) if until else None
    body = []
    for line in lines[head + 2 :]:
        if line.startswith("enc/rej:"):  # the caption
            break
        body.append(line[start:end].strip())
    return "".join(body)


@pytest.mark.slow
def test_after_the_readmes_first_command_every_command_names_the_root_that_sync_read(
    images: Path, faces: Path, clean_env: dict[str, str], tmp_path: Path
) -> None:
    assert not (ROOT / "images").exists()  # the checkout's own default would be wrong here
    env = clean_env | {"TZ": ZONE}  # a fresh HOME: embedded defaults, state in ~/.facelogin
    given = os.path.relpath(images, ROOT)  # as in the README: a path relative to the checkout

    sync = facelogin("sync", "--images", given, env=env, cwd=ROOT)

    assert sync.returncode == 0, sync.stderr[-3000:]
    assert f"images root: {images} (given by --images)" in sync.stderr
    state = tmp_path / "home" / ".facelogin"
    named = f"images root: {images} (the root the last sync on {state} read, "
    users = sorted(p.name for p in images.iterdir())

    table = facelogin("users", env=env | {"COLUMNS": "80"}, cwd=ROOT)
    assert table.returncode == 0, table.stderr
    assert named in table.stderr and "showing MongoDB only" not in table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, table.stdout
    for user in users:  # every name whole, at the start of its row
        assert any(line.split(" ")[0] == user for line in lines), (user, table.stdout)
    assert "…" not in table.stdout and "removed" not in table.stdout + table.stderr
    keys = column(lines, "profile image")
    for user in users:  # the store key, not a local path
        assert f"thumbs/256/{user}/{user.lower()}_01." in keys, keys
    assert str(state) not in keys

    listed = facelogin("users", "--json", env=env, cwd=ROOT)
    out = json.loads(listed.stdout)
    assert out["images"] == str(images) and out["images_root"]["source"] == "last sync"
    assert [(r["username"], r["state"]) for r in out["users"]] == [(u, "synced") for u in users]
    assert out["next_sync"] == {"stops": None, "removes": [], "refuses": [], "refusal": None}
    synced_at = datetime.fromisoformat(out["users"][0]["last_sync"]).astimezone(ZoneInfo(ZONE))
    assert synced_at.strftime("%Y-%m-%d") in table.stdout and synced_at.strftime("%H:%M") in table.stdout
    assert f"times in {synced_at.strftime('%Z')}" in table.stdout

    doctor = facelogin("doctor", "--json", env=env, cwd=ROOT)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 0, doctor.stdout
    assert json.loads(doctor.stdout)["images_root"]["path"] == str(images)
    assert checks["images root"]["status"] == "OK"
    assert checks["images root"]["detail"].startswith(f"{images} (the root the last sync on {state} read")

    bundle = read_bundle(state / "bundle")
    status = facelogin("status", env=env, cwd=ROOT)
    assert status.returncode == 0, status.stderr
    assert named in status.stderr
    assert "last run: facelogin sync on this machine, Completed (exit 0)" in status.stdout
    assert "6 users, 12 photos, 12 encoded" in status.stdout and f"images root {images}" in status.stdout
    assert f"bundle here: {bundle.version} (6 users)" in status.stdout
    report = json.loads(facelogin("status", "--json", env=env, cwd=ROOT).stdout)
    last = report["last_run"]
    assert (last["exit_code"], last["images"], last["counts"]["users"]) == (0, str(images), 6)
    assert report["bundle"]["version"] == bundle.version and report["images_root"]["path"] == str(images)
    assert last["local_time"].endswith(synced_at.strftime("%Z"))

    elsewhere = tmp_path / "elsewhere"  # enroll from any directory writes where the sync reads
    elsewhere.mkdir()
    enroll = facelogin("enroll", "Obama", "--from", str(faces / "probes" / "Obama.jpg"), "--no-trigger",
                       env=env, cwd=elsewhere)  # fmt: skip
    assert enroll.returncode == 0, enroll.stdout + enroll.stderr
    assert named in enroll.stderr and f"1 photo(s) written to {images / 'Obama'}" in enroll.stdout
    assert len(list((images / "Obama").iterdir())) == 4 and not (elsewhere / "images").exists()


@pytest.mark.parametrize(
    ("make", "problem"),
    [(lambda root: shutil.rmtree(root), "does not exist"), (lambda root: None, "holds no user folders")],
    ids=["missing", "empty"],
)
def test_users_on_a_root_the_sync_would_refuse_shows_mongodb_only_and_removes_nobody(
    enrolled: dict[str, Any], make: Any, problem: str
) -> None:
    root: Path = enrolled["images"]
    shutil.rmtree(root)
    root.mkdir()
    make(root)

    table = runner.invoke(app, ["users"], env={"COLUMNS": "80"})

    assert table.exit_code == 0, table.output
    note = f"images root {root} {problem}: showing MongoDB only; pass --images"
    assert table.stderr.count(note) == 1 and f"images root: {root} (set by FACELOGIN_IMAGES)" in table.stderr
    assert "folder gone" not in table.stdout and "removed" not in table.stdout
    out = json.loads(runner.invoke(app, ["users", "--json"]).stdout)
    assert {r["username"]: r["state"] for r in out["users"]} == {
        "Ann": "synced",
        "Bob": "synced",
        "Dee": "synced",
    }
    assert out["next_sync"]["stops"] == problem and out["images_root"]["problem"] == problem


def test_users_table_folds_a_long_name_and_never_cuts_it(enrolled: dict[str, Any]) -> None:
    long_name = "Maximilian_Alexander_Wolfeschlegelsteinhausen"  # 45 characters: wider than its column
    folder = enrolled["images"] / long_name
    folder.mkdir()
    (folder / "max_01.jpg").write_bytes((enrolled["images"] / "Cy" / "cy_01.jpg").read_bytes())

    table = runner.invoke(app, ["users"], env={"COLUMNS": "80"})

    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in table.stdout
    assert (
        column(lines, "user", until="photos") == f"AnnBobCyDee{long_name}"
    )  # folded over two lines, every character kept
    assert "thumbs/256/Ann/ann_01.jpg" in column(lines, "profile image")


@pytest.mark.slow
def test_users_predicts_the_removal_the_sync_refuses(enrolled: dict[str, Any], tmp_path: Path) -> None:
    shutil.rmtree(enrolled["images"] / "Bob")  # Bob and Dee gone: 2 of 3 recorded users, above the share

    listed = runner.invoke(app, ["users", "--json"])
    out = json.loads(listed.stdout)
    states = {r["username"]: r["state"] for r in out["users"]}
    kept = "folder gone: kept; needs --allow-removals 2"
    assert states == {"Ann": "synced", "Bob": kept, "Cy": "not synced yet", "Dee": kept}
    assert out["next_sync"]["refuses"] == ["Bob", "Dee"] and out["next_sync"]["removes"] == []

    sync = runner.invoke(app, ["sync", "--json"])  # the sync's own verdict, from the same guard

    assert sync.exit_code == 2, sync.output
    assert json.loads(sync.stdout)["error"] == out["next_sync"]["refusal"]
    assert "would remove 2 of 3 users (Bob, Dee)" in out["next_sync"]["refusal"]
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # no Prefect server: the local record
        status = runner.invoke(app, ["status", "--json"])
    last = json.loads(status.stdout)["last_run"]
    assert status.exit_code == 1 and last["state"] == "Refused (nothing changed)" and last["exit_code"] == 2
    assert last["error"] == out["next_sync"]["refusal"] and last["counts"] is None
    after = json.loads(runner.invoke(app, ["users", "--json"]).stdout)["users"]
    assert [r["username"] for r in after] == ["Ann", "Bob", "Cy", "Dee"]  # nobody was removed


def test_status_without_a_server_before_any_sync_says_so(clean_env: dict[str, str], tmp_path: Path) -> None:
    done = facelogin("status", env=clean_env, cwd=tmp_path, timeout=120)

    state = tmp_path / "home" / ".facelogin"
    assert done.returncode == 0, done.stderr
    assert f"last run: none recorded in {state} (run `facelogin sync --images DIR`)" in done.stdout
    assert f"bundle here: none in {state / 'bundle'} yet" in done.stdout
    assert "no Prefect server configured" not in done.stdout + done.stderr


def test_a_refused_sync_is_the_last_run_but_not_the_root_the_others_use(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "home" / ".facelogin"
    state.mkdir(mode=0o700, parents=True)  # as an earlier sync left it (a new machine keeps no record)
    missing = tmp_path / "no-such-images"
    sync = facelogin("sync", "--images", str(missing), env=clean_env, cwd=tmp_path, timeout=120)
    assert sync.returncode == 2

    status = facelogin("status", "--json", env=clean_env, cwd=tmp_path, timeout=120)

    out = json.loads(status.stdout)
    assert status.returncode == 1 and out["ok"] is False
    assert (
        out["last_run"]["state"] == "Refused (nothing changed)" and str(missing) in out["last_run"]["error"]
    )
    assert out["images_root"]["source"] == "default"  # a refused run read no root: it is not the answer
    human = facelogin("status", env=clean_env, cwd=tmp_path, timeout=120)
    assert "Refused (nothing changed) (exit 2)" in human.stdout and "does not exist" in human.stdout
    assert (state / "last-sync.json").stat().st_mode & 0o777 == 0o600


def test_doctor_fails_when_the_root_the_last_sync_read_is_gone(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    from facelogin.sync import lastrun

    gone = tmp_path / "share" / "images"  # an unmounted share: the path the last sync read is not there
    run = lastrun.run_record(images=str(gone), started="2026-12-04T02:00:00+00:00",
                             finished="2026-12-04T02:01:00+00:00", exit_code=0)  # fmt: skip
    lastrun.save(tmp_path / "home" / ".facelogin", run)

    done = facelogin("doctor", "--json", env=clean_env, cwd=tmp_path, timeout=120)

    check = next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "images root")
    assert done.returncode == 1 and check["status"] == "FAIL"
    assert check["detail"].startswith(f"{gone} does not exist (the root the last sync on ")
    assert "mount it again" in check["fix"] and "facelogin sync --images DIR" in check["fix"]
