"""Embedded MongoDB: a real wire-protocol server (nx-27017) started on demand under the state directory."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from facelogin.files import open_private, private_dir, write_atomic
from facelogin.processes import child_guard, command_line, die_with_parent, pid_alive, stop_pid

log = logging.getLogger(__name__)


class EmbeddedServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port_released(port: int, timeout: float = 10.0) -> bool:
    """Wait until 127.0.0.1:`port` can be listened on again (a killed server's socket outlives it briefly)."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
            try:
                sock.bind(("127.0.0.1", port))
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    return False
        time.sleep(0.05)


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


def start_nx(
    data_dir: Path, port: int | None = None, timeout: float = 20.0, thread_bound: bool = False
) -> NxServer:
    """Start nx-27017 on 127.0.0.1 with its data in `data_dir` and wait until it answers a ping.

    It is stopped by the kernel when this process dies (started from the main thread), or with
    `thread_bound` when the thread that starts it ends, whichever thread that is.
    """
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
        guard = die_with_parent if thread_bound else child_guard()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                umask=0o077, preexec_fn=guard)  # fmt: skip
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


SERVER_FILE = "server.json"  # the running server a holder shares: {"pid", "server_pid", "port"}
BORROW_LOCK = "borrow.lock"  # held shared by each process using a server it did not start


@contextmanager
def embedded_mongo(
    data_dir: Path, share: bool = False, wait: Callable[[], None] | None = None
) -> Iterator[str]:
    """A MongoDB URI for the embedded server of `data_dir`: one process at a time starts it.

    The holder's lock is an flock, which the kernel releases when its holder dies, however it dies.
    A holder that `share`s (the long-running `facelogin web`) leaves its server to other processes
    while it runs: a sync, `facelogin users` or a login recorded on this machine then borrow it
    instead of being refused, and the holder waits for them to finish before stopping it. Without
    `wait`, a busy database that is not shared is refused (after a few seconds, in case its holder
    is just stopping it); with it, `wait()` is called once and the lock is waited for.

    Within one thread it is re-entrant: an inner block uses the outer one's server (`facelogin
    sync` starts it while the temporary Prefect API starts, and the flow it runs finds it there).
    """
    private_dir(data_dir)
    key = os.path.realpath(data_dir)
    in_use = _in_use.__dict__
    if key in in_use:  # this thread has it already (`facelogin sync` and the flow it runs)
        yield in_use[key]
        return
    with _holding(data_dir, share, wait) as uri:
        in_use[key] = uri
        try:
            yield uri
        finally:
            del in_use[key]


# How long a command waits for the embedded database that another process holds, unshared, to be
# let go before it says who holds it.
BORROW_PATIENCE = 5.0
# ... and for a take-over of it (its lender died: this process or another borrower takes it over) to
# finish: the dead server's port released (10 s at most), a new one started on it (20 s at most).
TAKE_OVER_PATIENCE = 45.0

# data directory (real path) -> URI of the server this thread started or borrowed for it. Per
# thread: another thread of the process (a web request) borrows like another process would.
_in_use = threading.local()


@contextmanager
def _holding(data_dir: Path, share: bool, wait: Callable[[], None] | None) -> Iterator[str]:
    import fcntl

    with os.fdopen(open_private(data_dir / "lock", os.O_RDWR | os.O_CREAT), "r+") as lock:
        started = time.monotonic()
        deadline = started + BORROW_PATIENCE
        gone: str | None = None  # the pid of a holder found dead while waiting
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            with _borrowed(data_dir) as uri:
                if uri is not None:
                    yield uri
                    return
            if wait is not None:
                wait()
                fcntl.flock(lock, fcntl.LOCK_EX)
                break
            holder = _holder(lock)
            if _changing_hands(holder, data_dir) and time.monotonic() - started < TAKE_OVER_PATIENCE:
                # Its lender died: this process or another one is taking it over, wait for that.
                gone = gone or (holder if holder != str(os.getpid()) else None)
            elif time.monotonic() > deadline:  # not shared, or its holder is stopping it: not ours
                raise EmbeddedServerError(
                    f"another facelogin process (pid {_holder(lock)}) is using the embedded database in "
                    f"{data_dir}; wait for it to finish"
                )
            time.sleep(0.2)
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        stop_leftover(data_dir)
        (data_dir / SERVER_FILE).unlink(missing_ok=True)
        server = start_nx(data_dir)
        if gone is not None:
            log.warning(
                "the process that shared the embedded database in %s (pid %s, e.g. facelogin web) is gone: "
                "this process took it over and carries on", data_dir, gone,
            )  # fmt: skip
        try:
            if share:
                record = {"pid": os.getpid(), "server_pid": server.pid, "port": server.port}
                write_atomic(data_dir / SERVER_FILE, json.dumps(record).encode())
            yield server.uri
        finally:
            if share:
                with open(open_private(data_dir / BORROW_LOCK, os.O_RDWR | os.O_CREAT)) as borrowers:
                    fcntl.flock(borrowers, fcntl.LOCK_EX)  # every borrower is done
                    (data_dir / SERVER_FILE).unlink(missing_ok=True)
                    server.stop()
            else:
                server.stop()


@contextmanager
def _borrowed(data_dir: Path) -> Iterator[str | None]:
    """The URI of the server another process shares, held against its stopping while in use; else None."""
    import fcntl

    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    with open(open_private(data_dir / BORROW_LOCK, os.O_RDWR | os.O_CREAT)) as borrowing:
        fcntl.flock(borrowing, fcntl.LOCK_SH)
        try:
            record = json.loads((data_dir / SERVER_FILE).read_text())
            pid, port = int(record["pid"]), int(record["port"])
        except (OSError, ValueError, KeyError, TypeError):
            yield None
            return
        uri = f"mongodb://127.0.0.1:{port}/"
        try:
            if not pid_alive(pid):
                raise PyMongoError("its holder is gone")
            # Its holder is alive: a slow answer is a busy machine (a Pi, a sync encoding on every
            # core), not a server that is gone; give it seconds, not one.
            client: MongoClient[dict[str, object]] = MongoClient(
                uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000
            )
            with client:
                client.admin.command("ping")
        except PyMongoError:
            yield None
            return
        log.info("using the embedded database shared by pid %s on port %s", pid, port)
        lender = _Lender(data_dir, pid, port)
        try:
            yield uri
        finally:
            taken = lender.settle()
            if taken is not None:  # this process holds it now: stop it once every borrower is done
                fcntl.flock(borrowing, fcntl.LOCK_EX)
                (data_dir / SERVER_FILE).unlink(missing_ok=True)
                taken.stop()
            lender.stop()


class _Lender:
    """Watches the process a server is borrowed from; when it dies (killed: it had no time to wait for
    its borrowers, and its server went with it), takes the server over at once: the holder's lock, and
    a server on the same port, so the borrower's clients carry on at the same URI (an operation under
    way when it died is retried by its task). Another process that took it first is followed instead.
    """

    POLL = 0.2

    def __init__(self, data_dir: Path, pid: int, port: int) -> None:
        self.data_dir, self.pid, self.port = data_dir, pid, port
        self.server: NxServer | None = None
        self._lock: IO[str] | None = None
        self._busy = threading.Lock()  # held while a take-over is under way
        self._closing = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="embedded-lender", daemon=True)
        self._thread.start()

    def settle(self) -> NxServer | None:
        """No take-over from now on: the server of one that happened (waited for, if under way), or None."""
        with self._busy:
            self._closing = True
        return self.server

    def stop(self) -> None:
        """Stop watching; a server taken over must be stopped first (it ends with the watching thread)."""
        self._stopped.set()
        self._thread.join()
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # the holder's flock goes with it
            self._lock = None

    def _watch(self) -> None:
        while not self._stopped.wait(self.POLL):
            with self._busy:
                if self._closing:
                    return
                if pid_alive(self.pid):
                    continue
                taken = self._take_over()
            if taken:
                # The server taken over lives as long as this thread (the kernel stops it if this
                # process is killed): the thread waits here until the borrowing block has ended.
                self._stopped.wait()
                return
            try:  # another process holds it now: follow the record it shares, if on our port
                record = json.loads((self.data_dir / SERVER_FILE).read_text())
            except (OSError, ValueError):
                continue
            if int(record.get("port", 0)) == self.port and int(record.get("pid", 0)) != self.pid:
                self.pid = int(record["pid"])

    def _take_over(self) -> bool:
        import fcntl

        lock = os.fdopen(open_private(self.data_dir / "lock", os.O_RDWR | os.O_CREAT), "r+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        where = os.path.realpath(self.data_dir)
        _taking_over.add(where)
        try:
            return self._start_in_place(lock)
        finally:
            _taking_over.discard(where)

    def _start_in_place(self, lock: IO[str]) -> bool:
        """The lender's server started again by this process, on its port, under `lock` (held)."""
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock
        stop_leftover(self.data_dir)  # the lender's server, if it is still stopping
        # The kernel stops the lender's server with it; its files (the listening socket) close a
        # moment after its command line is gone, so wait for the port rather than fail on it.
        wait_port_released(self.port)
        try:
            self.server = start_nx(self.data_dir, port=self.port, thread_bound=True)
        except EmbeddedServerError as exc:
            log.error("the process sharing the embedded database (pid %s) is gone and it could not be "
                      "started again: %s", self.pid, exc)  # fmt: skip
            self._release()
            return True
        record = {"pid": os.getpid(), "server_pid": self.server.pid, "port": self.port}
        write_atomic(self.data_dir / SERVER_FILE, json.dumps(record).encode())
        log.warning(
            "the process that shared the embedded database in %s (pid %s, e.g. facelogin web) is gone: "
            "this process took it over on the same port and carries on", self.data_dir, self.pid,
        )  # fmt: skip
        return True


def _changing_hands(holder: str, data_dir: Path) -> bool:
    """Whether the lock's recorded holder is this process taking the server over from a lender that
    died, or a process that is gone (its lock is being let go, or taken over by one of its borrowers).
    This process holding it otherwise (another thread's unshared server) is no change of hands."""
    if holder == str(os.getpid()):
        return os.path.realpath(data_dir) in _taking_over
    return holder.isdigit() and not pid_alive(int(holder))


# data directories (real paths) whose server a thread of this process is taking over right now
_taking_over: set[str] = set()


def _holder(lock: IO[str]) -> str:
    lock.seek(0)
    return lock.read().strip() or "?"
