"""The login and profile pages in a real browser: Debian's Chromium with a fake camera fed from a y4m
video of a sample photo, against `facelogin web` run as a user runs it (a subprocess), on the
embedded defaults and on S3 (moto, presigned URLs) with nx-27017.

Skipped, with the reason, only where no Chromium is installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from facelogin.adapters.embedded import NxServer
from facelogin.settings import AwsAccess, Settings
from tests.conftest import AWS_ENV, s3_for
from tests.servers import MotoServer
from tests.web.browser import (
    WebServer,
    chromium_path,
    clean_env,
    launch,
    start_web,
    write_clip_y4m,
    write_y4m,
)
from tests.web.conftest import ENROLLED, LEFT_OUT
from tests.web.synced import Encodings, encode_tree, write_state

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Set to a directory (e.g. docs) to keep this run's screenshots there; they are always taken.
SCREENSHOTS_ENV = "FACELOGIN_SCREENSHOTS"
TRY_AGAIN = """() => {
    const button = document.getElementById('start');
    return !button.hidden && button.textContent === 'Try again';
}"""
PROFILE_LOADED = """() => {
    const image = document.getElementById('profile-image');
    return image !== null && image.complete && image.naturalWidth > 0;
}"""


@dataclass
class Site:
    kind: str
    server: WebServer
    env: dict[str, str]
    moto: MotoServer | None = None

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def chromium() -> str:
    found = chromium_path()
    if found is None:
        pytest.skip("no Chromium installed: `apt-get install -y chromium` (Debian) runs these browser tests")
    return found


@pytest.fixture(scope="module")
def playwright(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def videos(faces: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fake-camera videos: Obama's probe, a group photo, and the probe of a user left out of the bundle."""
    folder = tmp_path_factory.mktemp("videos")
    photos = {
        "Obama": faces / "probes" / "Obama.jpg",
        "group": faces / "groups" / "obama_and_biden.jpg",
        LEFT_OUT: faces / "probes" / f"{LEFT_OUT}.jpg",
    }
    return {name: write_y4m(photo, folder / f"{name}.y4m") for name, photo in photos.items()}


@pytest.fixture(scope="module")
def embedded_site(
    chromium: str, faces: Path, encodings: Encodings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """Embedded defaults: only FACELOGIN_STATE_DIR set (the local store, the embedded MongoDB)."""
    root = tmp_path_factory.mktemp("embedded")
    state = root / "state"
    write_state(Settings(state_dir=state), faces / "images", encodings, ENROLLED)
    # Still photos as the camera: these tests are about sessions and images, so liveness is off here;
    # the liveness tests below run the default.
    env = clean_env(root / "home", FACELOGIN_STATE_DIR=str(state), FACELOGIN_LIVENESS="off")
    server = start_web(env, root)
    yield Site("embedded", server, env)
    server.stop()


@pytest.fixture(scope="module")
def s3_site(
    chromium: str,
    faces: Path,
    encodings: Encodings,
    moto: MotoServer,
    nx: NxServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """Production-like: a bucket on moto in presigned mode, MongoDB on nx-27017."""
    root = tmp_path_factory.mktemp("s3")
    bucket, database = f"web-{uuid.uuid4().hex[:12]}", f"facelogin_{uuid.uuid4().hex[:12]}"
    s3_for(moto.url).create_bucket(Bucket=bucket)
    settings = {
        "FACELOGIN_STATE_DIR": str(root / "state"),
        "FACELOGIN_BUCKET": bucket,
        "FACELOGIN_MONGODB_URI": nx.uri,
        "FACELOGIN_DATABASE": database,
        "FACELOGIN_URL_MODE": "presigned",
        "FACELOGIN_LIVENESS": "off",
    }
    env = clean_env(root / "home", **AWS_ENV, AWS_ENDPOINT_URL=moto.url, **settings)
    access = AwsAccess(
        access_key_id="test", secret_access_key="testsecret", region="us-east-1", endpoint_url=moto.url
    )
    written = Settings(
        state_dir=root / "state", bucket=bucket, mongodb_uri=nx.uri, database=database, aws=access
    )
    write_state(written, faces / "images", encodings, ENROLLED)
    server = start_web(env, root)
    yield Site("s3", server, env, moto)
    server.stop()
    with MongoClient(nx.uri) as client:
        client.drop_database(database)


@pytest.fixture(params=["embedded", "s3"])
def site(request: pytest.FixtureRequest) -> Site:
    return request.getfixturevalue(f"{request.param}_site")


# How long a page may take to reach its final answer (the profile, or "try again"), in ms: a login is
# several camera bursts, each decided by dlib, and the full suite runs three workers on two cores
# (a refusal that took 41 s there failed at 30 s). A page that never answers still fails.
DECISION_WAIT = 90_000


def log_in(playwright: Any, chromium: str, site: Site, video: Path) -> tuple[Any, Any, dict[str, int], float]:
    """Open the login page with `video` as the camera and wait for the profile page with its image.

    Returns the browser, the page, each response's status by URL, and the seconds from the page
    load to the profile page showing its image.
    """
    browser = launch(playwright, chromium, video)
    page = browser.new_page()
    statuses: dict[str, int] = {}
    page.on("response", lambda response: statuses.setdefault(response.url, response.status))
    start = time.perf_counter()
    page.goto(f"{site.url}/login")
    page.click("#start")
    page.wait_for_url("**/profile", timeout=DECISION_WAIT)
    page.wait_for_function(PROFILE_LOADED, timeout=15_000)
    return browser, page, statuses, time.perf_counter() - start


def refused(playwright: Any, chromium: str, site: Site, video: Path | None, allow: bool = True) -> str:
    """The login page's answer for `video`: the status line once it says something final."""
    browser = launch(playwright, chromium, video, allow_camera=allow)
    try:
        page = browser.new_page()
        page.goto(f"{site.url}/login")
        page.click("#start")
        page.wait_for_function(TRY_AGAIN, timeout=DECISION_WAIT)
        assert page.url.endswith("/login")
        return str(page.inner_text("#status"))
    finally:
        browser.close()


def test_obama_on_the_camera_logs_in_and_his_profile_image_loads(
    playwright: Any, chromium: str, site: Site, videos: dict[str, Path], record_property: Any
) -> None:
    browser, page, statuses, seconds = log_in(playwright, chromium, site, videos["Obama"])
    try:
        assert page.inner_text("#username") == "Obama"
        assert page.inner_text("#photos") == "3"
        src = page.get_attribute("#profile-image", "src")
        assert src is not None and statuses[src] == 200
        assert page.evaluate("document.getElementById('profile-image').naturalWidth") > 0
        if site.kind == "s3":
            assert site.moto is not None and src.startswith(f"{site.moto.url}/")
            assert "X-Amz-Signature=" in src and "/thumbs/256/Obama/obama_01.jpg?" in src
        else:
            assert src == f"{site.url}/users/Obama/image?size=256"
        cookie = next(c for c in page.context.cookies() if c["name"] == "facelogin_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
    finally:
        browser.close()
    record_property("page_load_to_profile_s", round(seconds, 2))
    print(f"\n{site.kind}: page load to profile with its image: {seconds:.2f} s")


def test_a_group_photo_is_refused_as_several_faces(
    playwright: Any, chromium: str, embedded_site: Site, videos: dict[str, Path]
) -> None:
    said = refused(playwright, chromium, embedded_site, videos["group"])
    assert said.startswith("Several faces seen: only the person logging in")


def test_a_user_left_out_of_the_bundle_is_not_recognised(
    playwright: Any, chromium: str, embedded_site: Site, videos: dict[str, Path]
) -> None:
    said = refused(playwright, chromium, embedded_site, videos[LEFT_OUT])
    assert said.startswith("Face not recognised: you are not enrolled")


def test_a_denied_camera_is_explained_with_what_to_do(
    playwright: Any, chromium: str, embedded_site: Site, videos: dict[str, Path]
) -> None:
    said = refused(playwright, chromium, embedded_site, videos["Obama"], allow=False)
    assert said.startswith("Camera permission denied: allow this site to use the camera")


def test_the_profile_without_a_session_redirects_to_the_login_page(
    playwright: Any, chromium: str, site: Site
) -> None:
    browser = launch(playwright, chromium, None, allow_camera=False)
    try:
        page = browser.new_page()
        page.goto(f"{site.url}/profile")
        assert page.url == f"{site.url}/login"
        assert page.inner_text("h1") == "Log in with your face"
    finally:
        browser.close()


def test_one_users_session_cannot_fetch_another_users_image(
    playwright: Any, chromium: str, site: Site, videos: dict[str, Path]
) -> None:
    browser, page, _, _ = log_in(playwright, chromium, site, videos["Obama"])
    try:
        status = "(url) => fetch(url).then((response) => response.status)"
        assert page.evaluate(status, "/users/Obama/image") == 200
        assert page.evaluate(status, "/users/Biden/image") == 403
        assert page.evaluate(status, "/api/profile-image") == 200
        assert page.evaluate(status, "/api/users/Biden/profile-image") == 403
    finally:
        browser.close()


def test_a_login_at_the_pi_shows_on_the_web_profile(
    playwright: Any, chromium: str, embedded_site: Site, videos: dict[str, Path], faces: Path
) -> None:
    """`facelogin login` with FACELOGIN_RECORD_LOGINS borrows the web's embedded MongoDB to record."""
    facelogin = Path(sys.executable).with_name("facelogin")
    env = embedded_site.env | {"FACELOGIN_RECORD_LOGINS": "1"}
    done = subprocess.run(
        [str(facelogin), "login", "--no-liveness", "--image", str(faces / "probes" / "Obama.jpg")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["user"] == "Obama" and "not recorded" not in done.stderr

    browser, page, _, _ = log_in(playwright, chromium, embedded_site, videos["Obama"])
    try:
        assert ", at the Pi (" in page.inner_text("#previous-login")
        assert "at the Pi" in page.inner_text("#recent")
    finally:
        browser.close()


def test_screenshots_of_the_login_and_profile_pages(
    playwright: Any, chromium: str, embedded_site: Site, videos: dict[str, Path], tmp_path: Path
) -> None:
    """Taken on every run; kept under $FACELOGIN_SCREENSHOTS (e.g. docs) when it is set."""
    browser = launch(playwright, chromium, videos["Obama"])
    try:
        page = browser.new_page(viewport={"width": 1024, "height": 760})
        login_png, profile_png = tmp_path / "web-login.png", tmp_path / "web-profile.png"

        def hold(route: Any) -> None:
            # The moment the frames are sent: the camera is live and the page says so.
            if route.request.method == "POST":
                page.wait_for_function("document.getElementById('status').textContent.startsWith('Checking')")
                page.screenshot(path=str(login_png))
            route.continue_()

        page.route("**/login", hold)
        page.goto(f"{embedded_site.url}/login")
        page.click("#start")
        page.wait_for_url("**/profile", timeout=DECISION_WAIT)
        page.wait_for_function(PROFILE_LOADED, timeout=15_000)
        page.screenshot(path=str(profile_png), full_page=True)
    finally:
        browser.close()
    for png in (login_png, profile_png):
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 10_000
    keep = os.environ.get(SCREENSHOTS_ENV)
    if keep:
        for png in (login_png, profile_png):
            shutil.copy(png, Path(keep) / png.name)


@pytest.fixture(scope="module")
def people(faces: Path) -> Encodings:
    return encode_tree(faces / "liveness" / "people")


def _liveness_site(
    name: str,
    faces: Path,
    people: Encodings,
    nx: NxServer,
    tmp_path_factory: pytest.TempPathFactory,
    forced_actions: str | None,
) -> Iterator[Site]:
    """The liveness people enrolled, liveness on (the default), MongoDB on nx-27017."""
    root = tmp_path_factory.mktemp(name)
    database = f"facelogin_{uuid.uuid4().hex[:12]}"
    write_state(
        Settings(state_dir=root / "state", mongodb_uri=nx.uri, database=database),
        faces / "liveness" / "people", people,
    )  # fmt: skip
    env = clean_env(
        root / "home", FACELOGIN_STATE_DIR=str(root / "state"), FACELOGIN_MONGODB_URI=nx.uri,
        FACELOGIN_DATABASE=database,
    )  # fmt: skip
    server = start_web(env, root, forced_actions=forced_actions)
    yield Site(name, server, env)
    server.stop()
    with MongoClient(nx.uri) as client:
        client.drop_database(database)


@pytest.fixture(scope="module")
def live_site(
    chromium: str, faces: Path, people: Encodings, nx: NxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    yield from _liveness_site("live", faces, people, nx, tmp_path_factory, None)


@pytest.fixture(scope="module")
def blink_site(
    chromium: str, faces: Path, people: Encodings, nx: NxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """Every challenge asks for a blink (tests/web/forced_web.py), so a recorded blink can answer it."""
    yield from _liveness_site("blink", faces, people, nx, tmp_path_factory, "blink")


def test_a_photo_held_to_the_camera_is_refused_with_the_liveness_reason(
    playwright: Any, chromium: str, live_site: Site, faces: Path, tmp_path: Path
) -> None:
    """The enrolled person's own photo as the camera: the page prompts, captures, and is told no."""
    photo = sorted((faces / "liveness" / "people" / "lp_d13").glob("*.jpg"))[0]
    video = write_y4m(photo, tmp_path / "photo.y4m", frames=20)
    browser = launch(playwright, chromium, video)
    try:
        page = browser.new_page()
        page.goto(f"{live_site.url}/login")
        assert page.is_hidden("#prompt")
        page.click("#start")
        page.wait_for_selector("#prompt:not([hidden])", timeout=15_000)
        words = page.inner_text("#words")
        assert words.startswith(("Blink once", "Turn your head"))
        page.wait_for_function(TRY_AGAIN, timeout=DECISION_WAIT)
        said = page.inner_text("#status")
        assert said.startswith(("We did not see you", "We could not see your head turn", "We saw a still"))
        assert page.url.endswith("/login")
        assert not [c for c in page.context.cookies() if c["name"] == "facelogin_session"]
    finally:
        browser.close()
    assert "logged in without a liveness check" not in live_site.server.output()


def test_a_recorded_blink_answers_a_blink_challenge_and_reaches_the_profile(
    playwright: Any, chromium: str, blink_site: Site, faces: Path, tmp_path: Path
) -> None:
    frames = sorted((faces / "liveness" / "clips" / "lp_d13__blink__1").glob("frame_*.jpg"))
    video = write_clip_y4m(frames, tmp_path / "blink.y4m")
    browser = launch(playwright, chromium, video)
    try:
        page = browser.new_page()
        page.goto(f"{blink_site.url}/login")
        page.click("#start")
        page.wait_for_selector("#prompt:not([hidden])", timeout=15_000)
        assert page.inner_text("#words") == "Blink once"
        page.wait_for_url("**/profile", timeout=DECISION_WAIT)
        page.wait_for_function(PROFILE_LOADED, timeout=15_000)
        assert page.inner_text("#username") == "lp_d13"
    finally:
        browser.close()


def _evil_site(html: str) -> tuple[Any, str]:
    """Another site (another origin: localhost, another port) serving `html`."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_address[1]}/"


def test_a_page_on_another_site_can_neither_log_the_browser_out_nor_in(
    playwright: Any, chromium: str, embedded_site: Site, videos: dict[str, Path], faces: Path
) -> None:
    """A real cross-site page: a text/plain form post to /logout and a no-cors fetch of JSON as text/plain
    to /login. The server refuses both (415 before anything happens) and the session stays as it was."""
    from tests.web.conftest import frame_urls

    frames = json.dumps({"frames": frame_urls(faces / "images" / "Biden" / "biden_01.jpg")})
    target = embedded_site.url
    html = f"""<!doctype html><html><body>
<form id="out" method="post" action="{target}/logout" enctype="text/plain">
<input name='{{"a":"' value='"}}'></form>
<script>
fetch("{target}/login", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(frames)}}})
  .finally(() => {{ document.title = "sent"; document.getElementById("out").submit(); }});
</script></body></html>"""
    evil, evil_url = _evil_site(html)
    browser, page, _, _ = log_in(playwright, chromium, embedded_site, videos["Obama"])
    try:
        before = next(c for c in page.context.cookies() if c["name"] == "facelogin_session")
        statuses: dict[str, int] = {}
        page.on("response", lambda r: statuses.setdefault(r.url.split("?")[0], r.status))
        with page.expect_navigation(url=f"{target}/logout", timeout=15_000):
            page.goto(evil_url)
        assert statuses.get(f"{target}/logout") == 415
        after = next(c for c in page.context.cookies() if c["name"] == "facelogin_session")
        assert after["value"] == before["value"]  # not logged in as Biden, not logged out
        page.goto(f"{target}/profile")
        assert page.inner_text("#username") == "Obama"
    finally:
        browser.close()
        evil.shutdown()
        evil.server_close()


def test_log_out_ends_the_session_and_the_login_page_starts_nothing_by_itself(
    playwright: Any, chromium: str, embedded_site: Site, videos: dict[str, Path]
) -> None:
    browser, page, _, _ = log_in(playwright, chromium, embedded_site, videos["Obama"])
    try:
        cookie = next(c for c in page.context.cookies() if c["name"] == "facelogin_session")
        page.click("#logout")
        page.wait_for_url("**/login?notice=logged-out", timeout=15_000)
        assert page.inner_text("#notice") == "You are logged out."
        page.wait_for_timeout(1500)  # long enough for a camera to have started, were it started
        assert page.evaluate("document.getElementById('camera').srcObject") is None
        assert page.inner_text("#start") == "Start" and page.url.endswith("/login?notice=logged-out")
        page.context.add_cookies([cookie])  # a copy kept from before the logout...
        page.goto(f"{embedded_site.url}/profile")
        assert "/login" in page.url  # ...opens nothing
    finally:
        browser.close()
