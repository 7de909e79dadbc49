"""A sync killed with SIGKILL at any stage: nothing of it survives, the next run starts at once and
ends exactly where a clean run ends (same users, the same objects byte for byte, the same bundle);
so does a sync after a user's folder was renamed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from facelogin.adapters.embedded import start_nx
from facelogin.processes import command_line, pid_alive
from tests.conftest import AWS_ENV, s3_for
from tests.servers import FaultyProxy, MotoServer, seed_prefect_home

pytestmark = pytest.mark.slow

USERS = ("Biden", "Obama", "Rose_Leslie")


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class Sites:
    """Per name: a HOME (the embedded MongoDB in it) and a bucket behind a slow proxy, one images tree.

    A site's syncs start their own temporary Prefect API, as on embedded defaults, unless it is
    `served`: then they use `api`, the worker's running one (as served_env does). The runs that are
    killed, and the runs after them, keep their own (see STAGES); the clean and the renamed runs are
    about objects and records, and save ~6 s of CPU per temporary API not started."""

    def __init__(self, root: Path, images: Path, moto: MotoServer, prefect_db: Path, api: str) -> None:
        self.root, self.images, self.moto, self.prefect_db, self.api = root, images, moto, prefect_db, api
        self.proxies: list[FaultyProxy] = []

    def __call__(self, name: str, images: Path | None = None, served: bool = False) -> dict[str, Any]:
        bucket = f"crash-{name}-{uuid.uuid4().hex[:8]}"
        s3_for(self.moto.url).create_bucket(Bucket=bucket)
        # Thumbnail uploads go one at a time, through a proxy that a killed run slows down.
        proxy = FaultyProxy(self.moto.url, fail_methods=("PUT",), fail_paths="/thumbs/").start()
        self.proxies.append(proxy)
        home = self.root / name
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("FACELOGIN_", "AWS_", "PREFECT_"))}
        prefect_home = seed_prefect_home(home / "prefect", self.prefect_db)
        env = keep | AWS_ENV | {"HOME": str(home), "PREFECT_HOME": str(prefect_home)}
        env |= {"AWS_ENDPOINT_URL": proxy.url, "FACELOGIN_BUCKET": bucket, "FACELOGIN_IO_THREADS": "1"}
        env |= {"FACELOGIN_IMAGES": str(images or self.images), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        if served:
            env["PREFECT_API_URL"] = self.api
        return {"env": env, "home": home, "bucket": bucket, "proxy": proxy}


@pytest.fixture(scope="module")
def sites(
    faces: Path,
    tmp_path_factory: pytest.TempPathFactory,
    moto: MotoServer,
    migrated_prefect_db: Path,
    prefect_api: str,
) -> Iterator[Sites]:
    root = tmp_path_factory.mktemp("crash")
    for user in USERS:
        shutil.copytree(faces / "images" / user, root / "images" / user)
    made = Sites(root, root / "images", moto, migrated_prefect_db, prefect_api)
    yield made
    for proxy in made.proxies:
        proxy.stop()


@pytest.fixture(scope="module")
def expected(sites: Sites, moto: MotoServer) -> dict[str, Any]:
    """Where a clean run of the same tree ends."""
    clean = sites("clean", served=True)
    done = sync(clean["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    return end_state(clean, moto)


def sync(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("facelogin")
    return subprocess.run([str(exe), "sync", "--json"], env=env, capture_output=True, text=True, timeout=600,
                          check=False)  # fmt: skip


def end_state(case: dict[str, Any], moto: MotoServer) -> dict[str, Any]:
    state = case["home"] / ".facelogin"
    listed = s3_for(moto.url).list_objects_v2(Bucket=case["bucket"]).get("Contents", [])
    nx = start_nx(state / "mongo")
    try:
        with MongoClient(nx.uri) as mongo:
            users = sorted(
                (d["username"], [(p["filename"], p["status"], p["thumbs"]) for p in d["photos"]])
                for d in mongo["facelogin"]["users"].find()
            )
    finally:
        nx.stop()
    latest = json.loads((state / "bundle" / "latest.json").read_text())
    # Each object's key and ETag (the MD5 of its bytes): the same thumbnails and encodings, byte for
    # byte. A bundle manifest (.json) also says when it was made: its key (the content's version)
    # and the bundle's sha256 are compared instead.
    objects = sorted((o["Key"], None if o["Key"].endswith(".json") else o["ETag"]) for o in listed)
    return {"objects": objects, "users": users, "bundle": latest["sha256"]}


def workers(pid: int) -> bool:
    """True while encoder worker processes run below `pid` (spawned by multiprocessing)."""
    return any("spawn_main" in " ".join(command_line(p)) for p in descendants(pid))


# A stage -> whether the run below `pid` is in it. The killed runs and the runs after them start
# their own temporary Prefect API (embedded defaults), which must die with them. On a shared API, a
# killed run would also leave its sync slot (tasks/lock.py) taken until the lease expires: 60 s on a
# server with its services, never on the worker's test harness, which runs none.
STAGES: dict[str, Callable[[int, dict[str, Any]], bool]] = {
    # the temporary Prefect API is starting
    "start-up": lambda pid, case: any("server" in command_line(p) for p in descendants(pid)),
    # the encoder worker processes are running
    "encoding": lambda pid, case: workers(pid),
    # the encoders are done and thumbnails are staged, uploaded one a second
    "upload": lambda pid, case: (
        any((case["home"] / ".facelogin" / "staging").rglob("*.jpg")) and not workers(pid)
    ),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_sync_killed_at_any_stage_leaves_nothing_behind_and_the_next_run_converges(
    stage: str, sites: Sites, expected: dict[str, Any], moto: MotoServer
) -> None:
    case = sites(stage)
    # Thumbnail uploads take a second each in the run to be killed: the upload stage lasts long
    # enough to be killed in. The run after it, like the clean one, uploads at loopback speed.
    case["proxy"].delay = 1.0
    exe = Path(sys.executable).with_name("facelogin")
    process = subprocess.Popen([str(exe), "sync", "--json"], env=case["env"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not STAGES[stage](process.pid, case):
        assert process.poll() is None, f"the sync ended before reaching {stage}"
        assert time.monotonic() < deadline, f"never reached {stage}"
        time.sleep(0.05)
    left = descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    case["proxy"].delay = 0.0

    deadline = time.monotonic() + 15
    while (alive := {p for p in left if pid_alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, [command_line(p) for p in alive]  # no orphaned server, worker or database

    after = sync(case["env"])
    assert after.returncode == 0, after.stderr[-3000:]
    assert "waiting for it" not in after.stderr  # no stale lock to wait on
    summary = json.loads(after.stdout)
    assert summary["errors"] == [] and summary["users"] == len(USERS)
    got = end_state(case, moto)
    assert got["users"] == expected["users"] and got["bundle"] == expected["bundle"]
    assert got["objects"] == expected["objects"]


def test_a_renamed_folder_converges_byte_for_byte_to_a_clean_run(
    sites: Sites, expected: dict[str, Any], moto: MotoServer, tmp_path: Path
) -> None:
    """Biden synced as Biden_tmp, then renamed: his encodings are stored already, so his thumbnails
    are made by the thumbnail tasks, not the encoders; they are the clean run's bytes all the same."""
    images = tmp_path / "images"
    shutil.copytree(sites.images, images)
    (images / "Biden").rename(images / "Biden_tmp")
    case = sites("renamed", images, served=True)
    first = sync(case["env"])
    assert first.returncode == 0, first.stderr[-3000:]
    (images / "Biden_tmp").rename(images / "Biden")
    after = sync(case["env"])
    assert after.returncode == 0, after.stderr[-3000:]
    summary = json.loads(after.stdout)
    assert (summary["encoded"], summary["removed_users"]) == (0, 1)  # nothing encoded again
    got = end_state(case, moto)
    assert got["objects"] == expected["objects"]
    assert got["users"] == expected["users"] and got["bundle"] == expected["bundle"]
