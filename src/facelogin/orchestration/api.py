"""The Prefect API a command talks to: the configured one (PREFECT_API_URL), or a temporary local one
started for one command; whether it answers, and a run's page in its UI.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facelogin.processes import child_guard
from facelogin.settings import TEMPORARY_API_ENV


def api_url() -> str | None:
    """The configured Prefect API (PREFECT_API_URL, or the temporary one while it runs), or None."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def ui_url(flow_run: Any) -> str | None:
    """The flow run's page in the Prefect UI (PREFECT_UI_URL, derived from PREFECT_API_URL)."""
    from prefect.utilities.urls import url_for

    return url_for(flow_run)


def api_health() -> str | None:
    """None when the configured Prefect API answers, else why not."""
    import httpx

    url = api_url()
    if not url:
        return "no Prefect server configured (PREFECT_API_URL)"
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=5)
    except httpx.HTTPError as exc:
        return f"{url} does not answer: {exc.__class__.__name__}"
    return None if response.status_code == 200 else f"{url}/health answered {response.status_code}"


@contextmanager
def local_prefect_api(meanwhile: Callable[[], object] | None = None) -> Iterator[str | None]:
    """Use the configured Prefect API, or start a temporary local one for this run.

    Prefect's own ephemeral mode starts a separate temporary server in every process, so
    each encoding worker process would start its own; one server whose URL the workers
    inherit keeps them all on the same API, and the run visible in one place.

    `meanwhile()` is called while a temporary server starts (seconds of its own start-up, on
    another core), or first thing with a configured API. It runs in this thread, so that the
    processes it starts are stopped with this one (see facelogin.processes.child_guard).
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if meanwhile is not None:
            meanwhile()
        yield configured
        return
    server = TemporaryServer()
    # A fact about the API this process talks to, not a choice of the run, so it is set in the
    # environment for exactly the server's lifetime and not passed as a flow parameter: the lock
    # (tasks/lock.py) skips the shared concurrency slot and the flow its report artifacts when no
    # one else shares the API, and a parameter could be given to a deployment's run to skip them.
    os.environ[TEMPORARY_API_ENV] = "1"
    try:
        server.start(meanwhile)
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_to_api()
    finally:
        os.environ.pop(TEMPORARY_API_ENV, None)
        # Quietly: a log line about stopping would be queued for the API that is going away.
        logging.getLogger("prefect").disabled = True
        try:
            server.stop()
        finally:
            logging.getLogger("prefect").disabled = False


START_LOCK = "facelogin-server-start.lock"  # in PREFECT_HOME: one server start at a time


@dataclass
class TemporaryServer:
    """`prefect server start` (API only, no services, no UI) on a free loopback port, for one command.

    Started with die_with_parent: if this command is killed, the kernel stops the server too.
    """

    process: subprocess.Popen[bytes] | None = None
    output: Any = None  # the server's console output, read when it fails to start
    port: int = 0
    # The first start on a machine creates and migrates Prefect's database: on a Pi or a busy
    # 2-core box that takes longer than Prefect's default 20 s.
    timeout: float = 180.0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, meanwhile: Callable[[], object] | None = None) -> None:
        """Start the server and wait until it answers; `meanwhile()` is called while it starts."""
        from prefect.settings import PREFECT_HOME

        home = PREFECT_HOME.value()
        home.mkdir(parents=True, exist_ok=True)  # the server does not make it
        # Two commands starting at once on a new machine would both migrate the same SQLite
        # database ("duplicate column name"): one start at a time per PREFECT_HOME, until healthy.
        with open(home / START_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._launch(home)
            try:
                if meanwhile is not None:
                    meanwhile()
                self._wait()
            except BaseException:
                self.stop()
                raise

    def _launch(self, home: Path) -> None:
        self.port = _free_port()
        # The database the lock above guards; nobody to report analytics to. Block types are not
        # registered: on every start Prefect imports every installed collection (prefect-aws, boto3)
        # to see whether they changed, ~2.5 s of CPU, half this server's start-up, for a server that
        # lives for one command. A block saved through it registers its own type (Block.save does),
        # and `prefect server start` (the UI) registers them all as usual.
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
            "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
        }
        env.pop("PREFECT_API_URL", None)
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                   "--port", str(self.port), "--no-services", "--no-ui", "--log-level", "ERROR"]  # fmt: skip
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - kept open while the server runs
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=self.output, stderr=subprocess.STDOUT,
            preexec_fn=child_guard(),
        )  # fmt: skip

    def _wait(self) -> None:
        import httpx

        assert self.process is not None and self.output is not None
        deadline = time.monotonic() + self.timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.output.seek(0)
                    lines = self.output.read().decode(errors="replace").strip().splitlines()
                    last = next(
                        (line for line in reversed(lines) if "Error" in line), lines[-1] if lines else ""
                    )
                    raise RuntimeError(f"the temporary Prefect server did not start: {last.strip()}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the temporary Prefect server did not answer within {self.timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.output is not None:
            self.output.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _NoDrainProgress(logging.Filter):
    """Drops Prefect's "Still processing items: N items remaining..." while its queues drain.

    On a busy machine the drain at the end of a command can take more than the 4 s after which
    Prefect's queue services print that line on the command's stderr: a second line under a
    one-line failure that says nothing to the person who ran it (the items are sent all the same).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Still processing items")


_QUIET_DRAIN = _NoDrainProgress()


def _drain_to_api() -> None:
    """Send queued logs and events while the API is still up (else exit waits on retries)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for name in ("EventsWorker", "APILogWorker"):  # the services' loggers (type(self).__name__)
        logging.getLogger(name).addFilter(_QUIET_DRAIN)
    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all()
