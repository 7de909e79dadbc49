"""Web sessions and the attacks on them, tried for real: the app on nx-27017 with real cookies, and
`facelogin web` served by Uvicorn where the network matters (proxies, a full queue).

The logins here are with still photos and liveness off: sessions do not depend on how the face was
checked (test_liveness.py and test_browser.py log in with liveness on)."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from starlette.testclient import TestClient

from facelogin.adapters.embedded import NxServer
from facelogin.settings import Settings
from facelogin.web.limits import FREE_FAILS
from facelogin.web.sessions import COOKIE
from tests.web.browser import WebServer, clean_env, start_web
from tests.web.conftest import ADMIN_TOKEN, ENROLLED, MakeClient, frame_urls
from tests.web.synced import Encodings, write_state

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def log_in(client: Any, faces: Path, who: str = "Obama") -> Any:
    photo = faces / "probes" / f"{who}.jpg"
    if not photo.exists():
        photo = sorted((faces / "images" / who).iterdir())[0]
    answer = client.post("/login", json={"frames": frame_urls(photo)})
    assert answer.status_code == 200, answer.text
    return answer


def opens_profile(app: Any, cookie: str, address: str = "testclient") -> bool:
    """Whether a browser holding only `cookie` gets the profile page."""
    other = TestClient(app, client=(address, 40000), follow_redirects=False)
    other.cookies.set(COOKIE, cookie)
    return bool(other.get("/profile").status_code == 200)


def test_a_cookie_copied_before_logout_opens_nothing_after_it(make_client: MakeClient, faces: Path) -> None:
    client = make_client()
    log_in(client, faces)
    cookie = client.cookies[COOKIE]
    assert opens_profile(client.app, cookie)

    out = client.post("/logout", json={})
    assert out.status_code == 200 and out.json()["redirect"].endswith("/login?notice=logged-out")
    assert "facelogin_session=" in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert not opens_profile(client.app, cookie)  # the stolen copy is dead too
    again = TestClient(client.app, follow_redirects=False)
    again.cookies.set(COOKIE, cookie)
    answer = again.get("/profile")
    assert answer.status_code == 303 and answer.headers["location"].endswith("/login?notice=expired")


def test_a_new_login_makes_a_new_session_and_ends_the_old_one(make_client: MakeClient, faces: Path) -> None:
    client = make_client()
    log_in(client, faces)
    first = client.cookies[COOKIE]
    log_in(client, faces)
    second = client.cookies[COOKIE]
    assert first != second
    assert not opens_profile(client.app, first) and opens_profile(client.app, second)


def test_sessions_end_when_idle_and_at_their_lifetime(make_client: MakeClient, faces: Path) -> None:
    now = [1_900_000_000.0]
    client = make_client(clock=lambda: now[0], session_idle_minutes=5, session_minutes=60)
    log_in(client, faces)
    for _ in range(14):  # a request every 4 minutes keeps it alive (to 56 minutes)...
        now[0] += 240
        assert client.get("/profile", follow_redirects=False).status_code == 200
    now[0] += 240
    assert client.get("/profile", follow_redirects=False).status_code == 303  # ...until the hour is up (60)
    log_in(client, faces)
    now[0] += 301
    assert client.get("/profile", follow_redirects=False).status_code == 303  # idle 5 minutes


def test_the_admin_ends_a_users_sessions_and_only_the_admin_can(make_client: MakeClient, faces: Path) -> None:
    client = make_client()
    log_in(client, faces)
    cookie = client.cookies[COOKIE]
    other = make_client(sync=False)
    log_in(other, faces, "Biden")
    assert client.delete("/api/users/Obama/sessions").status_code == 401
    bad = client.delete("/api/users/Obama/sessions", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and opens_profile(client.app, cookie)
    done = client.delete("/api/users/Obama/sessions", headers=ADMIN)
    assert done.status_code == 200 and done.json() == {"username": "Obama", "ended": 1}
    assert not opens_profile(client.app, cookie)
    assert opens_profile(other.app, other.cookies[COOKIE])  # Biden is still logged in


def test_facelogin_remove_logs_the_user_out_at_once(
    make_client: MakeClient, faces: Path, images: Path, nx: NxServer, database: str
) -> None:
    from typer.testing import CliRunner

    from facelogin.cli import app

    client = make_client()
    log_in(client, faces)
    cookie = client.cookies[COOKIE]
    env = {
        "FACELOGIN_MONGODB_URI": nx.uri,
        "FACELOGIN_DATABASE": database,
        "FACELOGIN_STATE_DIR": str(client.settings.state_dir),
        "FACELOGIN_IMAGES": str(images),
    }
    done = CliRunner().invoke(app, ["remove", "Obama", "--yes"], env=env)
    assert done.exit_code == 0, done.output
    assert "ended 1 web session of Obama" in done.output
    assert not opens_profile(client.app, cookie)


def test_the_session_cookie_is_strict_httponly_and_holds_no_name(
    make_client: MakeClient, faces: Path
) -> None:
    client = make_client()
    cookie = log_in(client, faces).headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Obama" not in client.cookies[COOKIE]


@pytest.mark.parametrize(
    ("path", "body"), [("/login", {"frames": []}), ("/logout", {}), ("/login/challenge", {})]
)
def test_posts_from_other_sites_and_non_json_posts_are_refused(
    make_client: MakeClient, faces: Path, path: str, body: dict[str, Any]
) -> None:
    client = make_client(liveness="challenge")
    text = client.post(path, content=json.dumps(body), headers={"Content-Type": "text/plain"})
    form = client.post(
        path, content=b"frames=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (text.status_code, form.status_code) == (415, 415)
    refused = {"error": "requests from other sites are refused"}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        answer = client.post(path, json=body, headers=headers)
        assert (answer.status_code, answer.json()) == (403, refused)
    same = client.post(
        path, json=body, headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    )
    assert same.status_code != 415 and same.json() != refused


def test_no_refusal_carries_a_number(make_client: MakeClient, faces: Path, tmp_path: Path) -> None:
    """Distances, margins, thresholds and counts go to the audit record, never to the client."""
    from PIL import Image

    client = make_client()
    Image.new("RGB", (640, 480), (90, 140, 200)).save(tmp_path / "sky.jpg")
    for photo in (
        faces / "groups" / "two_people.jpg",
        faces / "probes" / "Kit_Harington.jpg",
        tmp_path / "sky.jpg",
    ):
        answer = client.post("/login", json={"frames": frame_urls(photo)})
        assert answer.status_code == 403
        assert not _numbers(answer.json()), answer.json()
    assert client.get("/healthz").text == "ok"
    assert client.get("/api/status").status_code == 401
    status = client.get("/api/status", headers=ADMIN).json()
    assert status["bundle"]["users"] == len(ENROLLED) and "threshold" in status["bundle"]


def _numbers(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


def test_an_attacker_at_one_address_cannot_lock_out_a_user_at_another(
    make_client: MakeClient, faces: Path
) -> None:
    client = make_client()
    attacker = TestClient(client.app, client=("203.0.113.9", 5000))
    group = frame_urls(faces / "groups" / "two_people.jpg", 3)
    kit = frame_urls(faces / "probes" / "Kit_Harington.jpg")  # nobody enrolled: nearest is someone
    statuses = [attacker.post("/login", json={"frames": f}).status_code for f in [group, kit] * 6]
    assert statuses[: FREE_FAILS + 1] == [403] * (FREE_FAILS + 1) and statuses[-1] == 429
    user = TestClient(client.app, client=("198.51.100.7", 6000))
    assert log_in(user, faces).json()["user"] == "Obama"


def test_many_addresses_failing_on_one_face_slow_that_account_down_but_not_its_own_address(
    make_client: MakeClient, faces: Path
) -> None:
    """A photo of Obama tried from three addresses, with liveness on: the account backs off, except where
    Obama logged in before."""
    now = [1_900_000_000.0]
    live = make_client(liveness="challenge", clock=lambda: now[0])
    photo = frame_urls(faces / "probes" / "Obama.jpg", 1)[0]
    for n, address in enumerate(("203.0.113.1", "203.0.113.2", "203.0.113.3")):
        attacker = TestClient(live.app, client=(address, 5000 + n))
        cid = attacker.post("/login/challenge", json={}).json()["id"]
        frames = [{"t": 100.0 * i, "image": photo} for i in range(15)]
        now[0] += 2.0
        refused = attacker.post("/login", json={"challenge": cid, "frames": frames})
        assert refused.status_code == 403 and refused.json()["reason"] in {
            "still",
            "flat",
            "blink",
            "turn_left",
            "turn_right",
        }
    waits = live.app.state.site.limiter
    assert waits.account_wait("192.0.2.44", "Obama") > 0
    assert waits.account_wait("192.0.2.44", "Biden") == 0


FUZZ_BODIES: list[bytes] = [
    b"", b"{", b"[]", b"null", b"42", b'"frames"', b"\xff\xfe\xfd", b'{"frames": "x"}',
    b'{"frames": [1, 2, 3]}', b'{"frames": [null]}', b'{"frames": [{"t": "x", "image": 1}]}',
    b'{"frames": [{"t": 1e999, "image": "data:image/jpeg;base64,AAAA"}]}',
    b'{"challenge": 5, "frames": []}', b'{"challenge": ["a"], "frames": {}}',
    b'{"challenge": "' + b"a" * 5000 + b'"}', b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"frames": [' + b'"data:image/jpeg;base64,////"' + b"]}", b'{"frames": ["\\ud800"]}',
    b'{"frames": [{"t": 1, "image": "data:image/jpeg;base64,' + b"A" * 3 + b'"}]}',
    b'{"frames": [{"t": true, "image": ""}]}', b"\x00\x00\x00", b'{"frames": [' + b'"x",' * 100 + b'"x"]}',
    b'{"challenge": null}',
    b'{"challenge": "", "frames": [{"t": 0, "image": "data:image/png;base64,iVBORw0KGgo="}]}',
]  # fmt: skip
FUZZ_HEADERS: list[dict[str, str]] = [
    {"Authorization": "Bearer \u00e9\u00e9"}, {"Authorization": "Bearer"}, {"Authorization": "Basic x"},
    {"Content-Length": "abc"}, {"Cookie": f"{COOKIE}=\u00e9.x"}, {"Cookie": f"{COOKIE}=" + "a." * 500},
    {"Origin": "null"}, {"Origin": "\u00e9"}, {"Content-Type": "application/json; charset=latin-1"},
]  # fmt: skip


@pytest.mark.parametrize("liveness", ["challenge", "off"])
def test_no_malformed_request_gets_a_5xx(make_client: MakeClient, liveness: str) -> None:
    client = make_client(liveness=liveness)
    raw = TestClient(client.app, raise_server_exceptions=False)
    seen = []
    for body in FUZZ_BODIES:
        for path in ("/login", "/login/challenge", "/logout"):
            answer = raw.post(path, content=body, headers={"Content-Type": "application/json"})
            seen.append((path, body[:40], answer.status_code))
    for headers in FUZZ_HEADERS:
        for method, path in (("GET", "/profile"), ("GET", "/api/status"), ("POST", "/login"), ("GET", "/")):
            try:
                answer = raw.request(method, path, headers={"Content-Type": "application/json", **headers})
            except (UnicodeEncodeError, ValueError):
                continue  # the client itself cannot send it: no server to test
            seen.append((path, str(headers)[:40], answer.status_code))
    assert len(seen) >= 60
    assert not [s for s in seen if s[2] >= 500], [s for s in seen if s[2] >= 500]


# --- `facelogin web` itself: the proxy headers and the queue --------------------------------------


@pytest.fixture(scope="module")
def served_state(
    faces: Path, encodings: Encodings, nx: NxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("served")
    database = f"facelogin_{uuid.uuid4().hex[:12]}"
    write_state(
        Settings(state_dir=root / "state", mongodb_uri=nx.uri, database=database),
        faces / "images",
        encodings,
        ENROLLED,
    )
    yield {
        "root": str(root),
        "FACELOGIN_STATE_DIR": str(root / "state"),
        "FACELOGIN_MONGODB_URI": nx.uri,
        "FACELOGIN_DATABASE": database,
    }
    with MongoClient(nx.uri) as client:
        client.drop_database(database)


def _serve(state: dict[str, str], **settings: str) -> WebServer:
    root = Path(state["root"])
    env = clean_env(
        root / "home", **{k: v for k, v in state.items() if k != "root"}, FACELOGIN_LIVENESS="off", **settings
    )
    return start_web(env, root)


def _post(
    server: WebServer, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request(
            "POST", "/login", body=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _clients(nx: NxServer, database: str) -> list[str | None]:
    with MongoClient(nx.uri) as mongo:
        return [e.get("client") for e in mongo[database]["logins"].find({}).sort("time", 1)]


@pytest.mark.slow
def test_x_forwarded_for_is_ignored_unless_it_comes_from_a_trusted_proxy(
    served_state: dict[str, str], faces: Path, nx: NxServer
) -> None:
    body = json.dumps({"frames": frame_urls(faces / "groups" / "two_people.jpg", 3)}).encode()
    forged = {"X-Forwarded-For": "6.6.6.6"}
    server = _serve(served_state)
    try:
        statuses = [_post(server, body, forged)[0] for _ in range(FREE_FAILS + 2)]
    finally:
        server.stop()
    assert statuses[-1] == 429  # a new forged address every time would not have helped: it is not read
    assert "6.6.6.6" not in _clients(nx, served_state["FACELOGIN_DATABASE"])

    server = _serve(served_state, FACELOGIN_TRUSTED_PROXIES='["127.0.0.1"]')
    try:
        assert _post(server, body, forged)[0] == 403
    finally:
        server.stop()
    assert _clients(nx, served_state["FACELOGIN_DATABASE"])[-1] == "6.6.6.6"


@pytest.mark.slow
def test_login_workers_yield_the_cpu_to_the_web_process(served_state: dict[str, str], faces: Path) -> None:
    """The decisions run at a lower priority than the web process, whose event loop must keep
    answering (pages, challenges, a full queue's 503) while every core decides."""
    from facelogin.web.pool import WORKER_NICENESS

    body = json.dumps({"frames": frame_urls(faces / "probes" / "Obama.jpg")}).encode()
    server = _serve(served_state, FACELOGIN_WEB_WORKERS="2")
    try:
        assert _post(server, body, {})[0] == 200  # decided in a worker: the workers are up
        pid = server.process.pid
        children = _login_workers(pid)
        assert children  # started as logins come (one so far)
        web = os.getpriority(os.PRIO_PROCESS, pid)
        assert {os.getpriority(os.PRIO_PROCESS, c) for c in children} == {min(19, web + WORKER_NICENESS)}
    finally:
        server.stop()


def _login_workers(pid: int) -> list[int]:
    """The login worker processes `facelogin web` (`pid`) started (multiprocessing spawn children)."""
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (p / "stat").is_file()
        and (p / "stat").read_text().rsplit(")", 1)[-1].split()[1] == str(pid)
        and b"spawn_main" in (p / "cmdline").read_bytes()
    ]  # fmt: skip


@pytest.mark.slow
def test_login_workers_exit_when_the_web_process_is_killed_outright(
    served_state: dict[str, str], faces: Path
) -> None:
    """SIGKILL (the OOM killer, `kill -9`) leaves `facelogin web` no time to stop its login workers:
    they notice on their own and exit, instead of each holding the models until the machine restarts."""
    from facelogin.processes import command_line, pid_alive

    body = json.dumps({"frames": frame_urls(faces / "probes" / "Obama.jpg")}).encode()
    server = _serve(served_state, FACELOGIN_WEB_WORKERS="2")
    try:
        assert _post(server, body, {})[0] == 200  # decided in a worker: the workers are up
        spawned = _login_workers(server.process.pid)
        assert spawned
        server.process.kill()
        server.process.wait(10)
    finally:
        server.stop()
    deadline = time.monotonic() + 15
    while alive := [p for p in spawned if pid_alive(p)]:
        assert time.monotonic() < deadline, [command_line(p) for p in alive]
        time.sleep(0.1)


def test_a_full_queue_answers_503_with_retry_after_at_once(served_state: dict[str, str], faces: Path) -> None:
    body = json.dumps({"frames": frame_urls(faces / "probes" / "Obama.jpg")}).encode()
    server = _serve(served_state, FACELOGIN_WEB_WORKERS="1", FACELOGIN_WEB_QUEUE="1")
    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            started = time.perf_counter()
            answers = list(
                pool.map(
                    lambda i: (_post(server, body, {"X-Test": str(i)}), time.perf_counter() - started),
                    range(12),
                )
            )
    finally:
        server.stop()
    busy = [(a, t) for a, t in answers if a[0] == 503]
    done = [a for a, _ in answers if a[0] == 200]
    assert done and busy, [a[0] for a, _ in answers]
    assert all(int(a[1]["retry-after"]) >= 1 for a, _ in busy)
    assert all(json.loads(a[2])["error"].startswith("The server is busy: try again in") for a, _ in busy)
    assert len(done) + len(busy) == 12  # every login decided or told to come back: no error


def _send_head(server: WebServer, body: bytes) -> Any:
    """A login's request line and headers with `Expect: 100-continue`, its body held back."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
        f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    return sock


def _interim(sock: Any) -> bytes:
    """An interim response (status line and headers), read to its blank line."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += sock.recv(1)
    return head


@pytest.mark.slow
def test_a_full_queue_refuses_before_the_body_is_sent(served_state: dict[str, str], faces: Path) -> None:
    """A login takes its place in the queue before its body is read: a client that asks first
    (Expect: 100-continue, as curl does for large bodies) is told 503 without uploading its frames,
    and the logins that hold the places are asked for theirs and decided."""
    body = json.dumps({"frames": frame_urls(faces / "probes" / "Obama.jpg")}).encode()
    server = _serve(served_state, FACELOGIN_WEB_WORKERS="1", FACELOGIN_WEB_QUEUE="1")
    held = []
    try:
        for _ in range(2):  # one deciding, one waiting: the queue is full while their bodies are held
            held.append(_send_head(server, body))
            assert _interim(held[-1]) == b"HTTP/1.1 100 Continue\r\n\r\n"
        late = _send_head(server, body)
        try:
            late.settimeout(10)  # not "100 Continue": the answer comes without the body
            assert late.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 503"
            answer = http.client.HTTPResponse(late)
            answer.begin()
            assert answer.status == 503 and int(answer.getheader("Retry-After") or 0) >= 1
            assert json.loads(answer.read())["error"].startswith("The server is busy")
        finally:
            late.close()
        for sock in held:  # the places' bodies, now: both decided
            sock.sendall(body)
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            assert answer.status == 200, answer.read()
    finally:
        for sock in held:
            sock.close()
        server.stop()
