"""The web app in-process (Starlette's test client) against real servers: nx-27017, moto S3, the real
face engine on the sample photos. The browser tests (test_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pymongo import MongoClient
from typer.testing import CliRunner

from facelogin.adapters.connect import open_store
from facelogin.adapters.embedded import NxServer, free_port
from facelogin.adapters.stores import DirStore
from facelogin.bundle import build_bundle, publish_bundle
from facelogin.cli import app as cli
from facelogin.login import CALIBRATION
from facelogin.profile import profile_image
from facelogin.web.limits import FIRST_BLOCK, FREE_FAILS
from facelogin.web.sessions import COOKIE
from tests.web.conftest import ADMIN_TOKEN, ENROLLED, LEFT_OUT, MakeClient, frame_urls
from tests.web.synced import Encodings


def log_in(client: Any, photo: Path, count: int = 5) -> Any:
    return client.post("/login", json={"frames": frame_urls(photo, count)})


def logins(nx: NxServer, database: str) -> list[dict[str, Any]]:
    with MongoClient(nx.uri, tz_aware=True) as mongo:
        return list(mongo[database]["logins"].find({}, {"_id": 0}).sort("time", 1))


def test_obama_logs_in_and_his_profile_shows_his_image_from_the_local_store(
    make_client: MakeClient, faces: Path
) -> None:
    client = make_client()
    answer = log_in(client, faces / "probes" / "Obama.jpg")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["decision"], body["user"]) == ("accepted", "Obama")
    assert body["redirect"].endswith("/profile")
    assert not {"distance", "margin", "threshold", "frames", "faces", "ms"} & body.keys()
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback; https gets Secure

    page = client.get("/profile")
    assert page.status_code == 200
    assert '<h1 id="username">Obama</h1>' in page.text
    assert 'src="http://testserver/users/Obama/image?size=256"' in page.text
    assert '<dd id="photos">3</dd>' in page.text
    assert "none: this is the first" in page.text
    assert page.headers["cache-control"] == "no-store"

    image = client.get("/users/Obama/image?size=256")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(image.content))
    assert (thumb.format, max(thumb.size)) == ("JPEG", 256)


@pytest.mark.parametrize(
    ("photo", "reason", "words"),
    [
        ("groups/obama_and_biden.jpg", "several faces", "Several faces seen"),
        ("groups/kit_with_rose.jpg", "several faces", "Several faces seen"),
        (f"probes/{LEFT_OUT}.jpg", "unknown", "Face not recognised"),
        ("blank", "no face", "No face found"),
    ],
)
def test_a_refusal_says_why_in_plain_words_and_sets_no_session(
    make_client: MakeClient, faces: Path, tmp_path: Path, photo: str, reason: str, words: str
) -> None:
    client = make_client()
    if photo == "blank":
        Image.new("RGB", (640, 480), (90, 140, 200)).save(tmp_path / "sky.jpg")
        path = tmp_path / "sky.jpg"
    else:
        path = faces / photo
    answer = log_in(client, path)

    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert (body["decision"], body["user"], body["reason"]) == ("rejected", None, reason)
    assert body["message"].startswith(words)
    assert "set-cookie" not in answer.headers
    assert client.get("/profile", follow_redirects=False).status_code == 303


def test_profile_without_a_session_or_with_a_forged_one_redirects_to_the_login_page(
    make_client: MakeClient,
) -> None:
    client = make_client()
    for cookies in ({}, {COOKIE: "eyJ1IjoiT2JhbWEifQ.forged"}):
        client.cookies.clear()
        for name, value in cookies.items():
            client.cookies.set(name, value)
        answer = client.get("/profile", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("http://testserver/login")
    assert client.get("/", follow_redirects=False).headers["location"] == "http://testserver/login"
    assert client.get("/api/profile-image").status_code == 401


def test_a_session_ends_when_it_expires(make_client: MakeClient, faces: Path) -> None:
    now = [1_800_000_000.0]
    client = make_client(clock=lambda: now[0], session_minutes=10)
    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200
    assert client.get("/profile").status_code == 200

    now[0] += 10 * 60 + 1
    answer = client.get("/profile", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].endswith("/login?notice=expired")


def test_one_users_session_cannot_fetch_another_users_image(make_client: MakeClient, faces: Path) -> None:
    client = make_client()
    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200

    assert client.get("/users/Obama/image").status_code == 200
    assert client.get("/users/Biden/image").status_code == 403
    assert client.get("/api/users/Biden/profile-image").status_code == 403
    own = client.get("/api/users/Obama/profile-image")
    assert own.status_code == 200 and own.json()["username"] == "Obama"

    client.cookies.clear()
    assert client.get("/users/Obama/image").status_code == 401


def test_the_json_api_gives_the_logged_in_users_image_and_any_users_with_the_admin_token(
    make_client: MakeClient, faces: Path
) -> None:
    client = make_client()
    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200
    mine = client.get("/api/profile-image?size=128").json()
    assert mine == {
        "username": "Obama",
        "size": 128,
        "url": "http://testserver/users/Obama/image?size=128",
        "expires_in": None,
        "photo": "obama_01.jpg",
    }

    client.cookies.clear()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    biden = client.get("/api/users/Biden/profile-image", headers=admin)
    assert biden.status_code == 200 and biden.json()["photo"] == "biden_01.jpg"
    assert client.get(biden.json()["url"], headers=admin).status_code == 200  # the admin may fetch it too
    assert client.get("/api/users/Biden/profile-image").status_code == 401
    wrong = client.get("/api/users/Biden/profile-image", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert client.get("/api/users/Nobody/profile-image", headers=admin).status_code == 404


@pytest.mark.parametrize("server", ["s3", "seaweed"])
def test_presigned_mode_shows_a_fresh_presigned_url_that_s3_serves(
    make_client: MakeClient, faces: Path, database: str, nx: NxServer, server: str
) -> None:
    client = make_client(store=server)
    with MongoClient(nx.uri) as mongo:
        stored = mongo[database]["users"].find_one({"username": "Obama"})
    assert stored is not None and stored["profile_image"]["urls"] is None  # keys only: links expire

    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200
    api = client.get("/api/profile-image").json()
    assert "X-Amz-Signature=" in api["url"] and api["expires_in"] == 3600
    assert f"/{client.settings.bucket}/thumbs/256/Obama/obama_01.jpg?" in api["url"]  # type: ignore[attr-defined]
    with urllib.request.urlopen(api["url"], timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/jpeg"
    page = client.get("/profile")
    assert "X-Amz-Signature=" in page.text
    origin = api["url"].split("/", 3)[:3]
    assert "/".join(origin) in page.headers["content-security-policy"]  # img-src admits the bucket


def test_base_url_mode_shows_the_url_stored_in_mongodb(
    make_client: MakeClient, faces: Path, database: str, nx: NxServer
) -> None:
    client = make_client(store="s3", url_mode="base-url", base_url="https://cdn.example.org/faces")
    with MongoClient(nx.uri) as mongo:
        stored = mongo[database]["users"].find_one({"username": "Obama"})
    assert stored is not None
    assert (
        stored["profile_image"]["urls"]["256"]
        == "https://cdn.example.org/faces/thumbs/256/Obama/obama_01.jpg"
    )

    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200
    assert f'src="{stored["profile_image"]["urls"]["256"]}"' in client.get("/profile").text


@pytest.mark.parametrize(
    ("store", "mode"), [("dir", "presigned"), ("s3", "presigned"), ("s3", "base-url"), ("s3", "public-acl")]
)
def test_facelogin_profile_gives_the_url_the_web_page_and_the_cli_show(
    make_client: MakeClient,
    faces: Path,
    database: str,
    nx: NxServer,
    monkeypatch: pytest.MonkeyPatch,
    store: str,
    mode: str,
) -> None:
    """One rule: facelogin.profile's answer is the one the page, the JSON API and `profile-url` give."""
    client = make_client(store=store, url_mode=mode, base_url="https://cdn.example.org/faces")
    settings = client.settings  # type: ignore[attr-defined]
    with MongoClient(nx.uri) as mongo:
        doc = mongo[database]["users"].find_one({"username": "Obama"})
    assert doc is not None

    def web_route(size: int) -> str:
        return f"http://testserver/users/Obama/image?size={size}"

    def same(url: str | None, shown: str) -> bool:
        """Equal, a fresh presigned link aside: the same object, signed a moment apart."""
        signed = "X-Amz-Signature=" in shown
        return url == shown or (signed and (url or "").split("?")[0] == shown.split("?")[0])

    ours = profile_image(doc, open_store(settings), 128, web_route)
    assert ours is not None
    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200
    shown = client.get("/api/profile-image?size=128").json()
    assert same(ours.url, shown["url"])
    assert (shown["size"], shown["expires_in"]) == (ours.size, ours.expires_in)
    page = profile_image(doc, open_store(settings), None, web_route)
    assert page is not None and page.size == 256
    src = client.get("/profile").text.split('id="profile-image" src="', 1)[1].split('"', 1)[0]
    assert same(page.url, html.unescape(src))
    if store == "dir":
        return  # the CLI prints a local store's file, which a browser could not open
    for name, value in {
        "FACELOGIN_STATE_DIR": str(settings.state_dir), "FACELOGIN_BUCKET": str(settings.bucket),
        "FACELOGIN_MONGODB_URI": nx.uri, "FACELOGIN_DATABASE": database, "FACELOGIN_URL_MODE": mode,
        "FACELOGIN_BASE_URL": "https://cdn.example.org/faces",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    printed = json.loads(CliRunner().invoke(cli, ["profile-url", "Obama", "--size", "128", "--json"]).stdout)
    assert same(ours.url, printed["url"]) and printed["expires_in"] == ours.expires_in
    # The snippet docs/configuration.md gives for reading it from your own code.
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    snippet = (
        docs.split("**Reading a profile image URL.**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet.replace("Matthew", "Obama"), "docs/configuration.md", "exec"), {})
    biggest = profile_image(doc, open_store(settings), 256, web_route)
    assert biggest is not None and same(biggest.url, out.getvalue().strip())


def test_every_decision_is_recorded_and_the_profile_shows_this_and_the_previous_login(
    make_client: MakeClient, faces: Path, nx: NxServer, database: str
) -> None:
    client = make_client()
    assert log_in(client, faces / "groups" / "obama_and_biden.jpg").status_code == 403
    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200
    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200

    events = logins(nx, database)
    assert [(e["user"], e["decision"], e["source"]) for e in events] == [
        (None, "rejected", "web"),
        ("Obama", "accepted", "web"),
        ("Obama", "accepted", "web"),
    ]
    assert events[0]["reason"] == "several faces" and events[0]["client"] == "testclient"
    assert 0 < events[1]["distance"] < 0.5 and events[1]["margin"] >= 0.1
    page = client.get("/profile").text
    this, previous = (f"{e['time'].strftime('%Y-%m-%d %H:%M:%S')} UTC" for e in reversed(events[1:]))
    assert f">{this}</time>, on the web (testclient)" in page.split('id="this-login"')[1].split("</dd>")[0]
    assert f">{previous}</time>" in page.split('id="previous-login"')[1].split("</dd>")[0]


@pytest.mark.parametrize(
    ("frames", "status", "words"),
    [
        ("six", 413, "too many frames: 6, at most 5"),
        ("two", 400, "too few frames: 2, at least 3"),
        ("huge", 413, "frame 1 is larger than"),
        ("wide", 400, "image is too large: 4000x3000 pixels"),
        ("text", 400, "frame 1: not a readable image"),
        ("nonsense", 400, "is not base64"),
        ("shape", 400, 'send {"frames": [...]}'),
    ],
)
def test_frame_limits_per_request(
    make_client: MakeClient, faces: Path, frames: str, status: int, words: str
) -> None:
    client = make_client(web_frame_bytes=200_000)
    good = frame_urls(faces / "probes" / "Obama.jpg", 1)[0]
    wide = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(wide, "PNG")  # small file, 12 MP decoded
    sent: Any = {
        "six": [good] * 6,
        "two": [good] * 2,
        "huge": ["data:image/jpeg;base64," + base64.b64encode(b"\xff" * 300_000).decode()] * 3,
        "wide": ["data:image/png;base64," + base64.b64encode(wide.getvalue()).decode()] * 3,
        "text": [base64.b64encode(b"hello, world").decode()] * 3,
        "nonsense": ["data:image/jpeg;base64,???"] * 3,
        "shape": "not a list",
    }[frames]
    answer = client.post("/login", json={"frames": sent})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(make_client: MakeClient) -> None:
    client = make_client(web_frame_bytes=20_000, web_frames=3)
    answer = client.post("/login", content=b"x" * 200_000, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "request too large" in answer.json()["error"]
    not_json = client.post("/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400


def test_failed_logins_from_one_address_back_off_with_a_clear_429(
    make_client: MakeClient, faces: Path
) -> None:
    client = make_client()
    group = frame_urls(faces / "groups" / "two_people.jpg", 3)
    failures = [client.post("/login", json={"frames": group}).status_code for _ in range(FREE_FAILS + 1)]
    assert failures == [403] * (FREE_FAILS + 1)
    blocked = client.post("/login", json={"frames": group})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) == FIRST_BLOCK
    wait = f"{FIRST_BLOCK:.0f}"
    assert blocked.json()["error"] == f"Too many failed logins from your address: try again in {wait} s."
    obama = client.post("/login", json={"frames": frame_urls(faces / "probes" / "Obama.jpg")})
    assert obama.status_code == 429  # the address waits, whoever is at it


def test_with_no_bundle_yet_the_pages_say_so_and_the_log_says_to_run_the_sync(
    make_client: MakeClient, faces: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(sync=False)
    with caplog.at_level("WARNING"):
        page = client.get("/login")
    assert page.status_code == 200
    assert "Login is not available yet: nobody is enrolled on this server" in page.text
    assert "login.js" not in page.text and str(client.settings.bundle_dir) not in page.text
    assert any("run `facelogin sync` first" in r.getMessage() for r in caplog.records)
    answer = log_in(client, faces / "probes" / "Obama.jpg")
    assert answer.status_code == 503 and answer.json()["error"].startswith("Login is not available yet")
    health = client.get("/healthz")
    assert (health.status_code, health.text) == (503, "unavailable")
    status = client.get("/api/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status.status_code == 503 and status.json()["bundle"]["ready"] is False
    assert "run `facelogin sync` first" in status.json()["bundle"]["problem"]


def test_a_new_bundle_and_a_calibration_are_picked_up_without_a_restart(
    make_client: MakeClient, faces: Path, encodings: Encodings, nx: NxServer, database: str
) -> None:
    client = make_client(users=[*ENROLLED, LEFT_OUT])
    kit = faces / "probes" / f"{LEFT_OUT}.jpg"
    assert log_in(client, kit).json()["user"] == LEFT_OUT

    bundle_dir = client.settings.bundle_dir  # type: ignore[attr-defined]
    data, manifest = build_bundle(
        {u: list(encodings[u].values()) for u in ENROLLED}, {}, "2026-11-28T01:00:00+00:00", {}
    )
    publish_bundle(DirStore(bundle_dir), "", data, manifest)
    refused = log_in(client, kit).json()
    assert (refused["decision"], refused["reason"]) == ("rejected", "unknown")
    assert logins(nx, database)[-1]["bundle"] == manifest["version"]  # the audit record, not the client

    obama = faces / "probes" / "Obama.jpg"
    assert log_in(client, obama).json()["decision"] == "accepted"
    calibration = {"format": "facelogin-calibration", "bundle_sha256": manifest["sha256"], "threshold": 0.2}
    (bundle_dir / CALIBRATION).write_text(json.dumps(calibration))
    strict = log_in(client, obama).json()
    assert (strict["decision"], strict["reason"]) == ("rejected", "unknown")
    assert logins(nx, database)[-1]["threshold"] == 0.2


def test_an_unreachable_mongodb_is_named_with_what_to_check(
    make_client: MakeClient, faces: Path, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    assert log_in(client, faces / "probes" / "Obama.jpg").status_code == 200
    cookie = client.cookies.get(COOKIE)

    port = free_port()
    offline = make_client(sync=False, mongodb_uri=f"mongodb://127.0.0.1:{port}/")
    offline.cookies.set(COOKIE, cookie or "")
    with caplog.at_level("WARNING"):
        page = offline.get("/profile")
        answer = log_in(offline, faces / "probes" / "Obama.jpg")
    assert page.status_code == 503 and "The database is unreachable: try again later." in page.text
    assert f"127.0.0.1:{port}" not in page.text  # the visitor is not told where the database is...
    expected = f"MongoDB at 127.0.0.1:{port}/{database} is unreachable: check FACELOGIN_MONGODB_URI"
    assert any(expected in r.getMessage() for r in caplog.records)  # ...the operator's log is
    assert (
        answer.status_code == 503
        and answer.json()["error"] == "The database is unreachable: try again later."
    )
    assert "set-cookie" not in answer.headers  # an accepted login that cannot be recorded opens no session
