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

from facelogin.files import open_private, private_dir
from facelogin.processes import child_guard, command_line, pid_alive, stop_pid

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

    private_dir(data_dir)
    port = port or free_port()
    cmd = [
        _nx_command(),
        "--data-dir", str(data_dir),
        "--host", "127.0.0.1",
        "-p", str(port),
        "--log-file", str(data_dir / "nx.log"),
        "--pid-file", str(data_dir / "nx.pid"),
    ]  # fmt: skip
    out = open_private(data_dir / "nx.out")
    try:
        # Private files (umask), and gone with us even when we are killed (die_with_parent).
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                umask=0o077, preexec_fn=child_guard())  # fmt: skip
    finally:
        os.close(out)
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


def stop_leftover(data_dir: Path) -> int | None:
    """Stop an nx-27017 still serving `data_dir` for a sync that was killed; returns its pid if one was."""
    try:
        pid = int((data_dir / "nx.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    argv = command_line(pid)
    if not pid_alive(pid) or not any("nx-27017" in a for a in argv) or str(data_dir) not in argv:
        return None
    log.warning("stopping a leftover embedded database server (pid %s) of a sync that did not finish", pid)
    stop_pid(pid)
    return pid


@contextmanager
def embedded_mongo(data_dir: Path) -> Iterator[str]:
    """A MongoDB URI for the embedded server, locked to one user of `data_dir` at a time.

    The lock is an flock: the kernel releases it when its holder dies, however it dies.
    """
    import fcntl

    private_dir(data_dir)
    with os.fdopen(open_private(data_dir / "lock", os.O_RDWR | os.O_CREAT), "r+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmbeddedServerError(
                f"another sync is using the embedded database in {data_dir}; wait for it to finish"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        stop_leftover(data_dir)
        server = start_nx(data_dir)
        try:
            yield server.uri
        finally:
            server.stop()
