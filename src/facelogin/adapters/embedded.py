"""Embedded MongoDB: a real wire-protocol server (nx-27017) started on demand under the state directory."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _nx_command() -> str:
    sibling = Path(sys.executable).with_name("nx-27017")
    found = str(sibling) if sibling.exists() else shutil.which("nx-27017")
    if not found:
        raise EmbeddedServerError("nx-27017 is not installed: pip install 'nx-27017==0.8.1'")
    return found


@dataclass
class NxServer:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def start_nx(data_dir: Path, port: int | None = None, timeout: float = 20.0) -> NxServer:
    """Start nx-27017 on 127.0.0.1 with its data in `data_dir` and wait until it answers a ping."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    port = port or free_port()
    cmd = [
        _nx_command(),
        "--data-dir", str(data_dir),
        "--host", "127.0.0.1",
        "-p", str(port),
        "--log-file", str(data_dir / "nx.log"),
        "--pid-file", str(data_dir / "nx.pid"),
    ]  # fmt: skip
    with open(data_dir / "nx.out", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = NxServer(proc, port, data_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerError(
                f"nx-27017 exited with code {proc.returncode} on port {port}; see {data_dir / 'nx.out'}"
            )
        try:
            client: MongoClient[dict[str, object]] = MongoClient(
                server.uri, serverSelectionTimeoutMS=300, connectTimeoutMS=300
            )
            with client:
                client.admin.command("ping")
            log.debug("nx-27017 pid %s ready on port %s", proc.pid, port)
            return server
        except PyMongoError:
            time.sleep(0.1)
    server.stop()
    raise EmbeddedServerError(f"nx-27017 did not answer on port {port} within {timeout:.0f} s")


@contextmanager
def embedded_mongo(data_dir: Path) -> Iterator[str]:
    """A MongoDB URI for the embedded server, locked to one user of `data_dir` at a time."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(data_dir / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmbeddedServerError(
                f"another sync is using the embedded database in {data_dir}; wait for it to finish"
            ) from None
        lock.write(str(os.getpid()))
        lock.flush()
        server = start_nx(data_dir)
        try:
            yield server.uri
        finally:
            server.stop()
