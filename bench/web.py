"""The web login against `facelogin login --serve` on the same frames, and page load to profile in Chromium.

    .venv/bin/python -m bench.web [--faces ../shared/faces] [--requests 20] [--browser-runs 5]

A synced state on embedded defaults is written in a temporary directory (the sync's own pieces,
tests/web/synced.py), then:

(a) reference, `facelogin login --serve` (warm, one process): one request per login, the same five
    640x480 JPEG frames of the probe photo as files ({"images": [...]}; n=5, k=3 as the web uses);
(b) `facelogin web` (Uvicorn, embedded MongoDB): POST /login with those five frames as data URLs, as
    the login page sends them; wall time per request at the client (HTTP, JSON and base64, decoding,
    the same decision, and the login recorded in MongoDB);
(c) Chromium with a fake camera showing the probe: from the start of the page load to the profile
    page showing its image (camera start, capture, POST, redirect, profile, image), when Chromium is
    installed.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facelogin.settings import Settings
from tests.servers import faces_root
from tests.web.browser import chromium_path, clean_env, launch, start_web, write_y4m
from tests.web.conftest import ENROLLED, frame_urls
from tests.web.synced import encode_tree, write_state

FACELOGIN = Path(sys.executable).with_name("facelogin")
PROFILE_LOADED = """() => {
    const image = document.getElementById('profile-image');
    return image !== null && image.complete && image.naturalWidth > 0;
}"""


def reference_serve(bundle: Path, frames: list[Path], requests: int, cache: Path) -> list[float]:
    """Seconds per request of `facelogin login --serve` deciding on `frames`, after one warm-up."""
    process = subprocess.Popen(
        [str(FACELOGIN), "login", "--serve", "--bundle", str(bundle), "--cache-dir", str(cache)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    line = json.dumps({"images": [str(f) for f in frames], "agree": 3}) + "\n"
    samples = []
    try:
        for index in range(requests + 1):
            start = time.perf_counter()
            process.stdin.write(line)
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            if index:
                samples.append(time.perf_counter() - start)
            assert answer["user"] == "Obama", answer
    finally:
        process.stdin.close()
        process.wait(30)
    return samples


def web_requests(port: int, frames: list[str], requests: int) -> tuple[list[float], list[float]]:
    """Seconds per POST /login at the client, and the server's decision time (its `ms.total`)."""
    body = json.dumps({"frames": frames})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    wall, decide = [], []
    for index in range(requests + 1):
        start = time.perf_counter()
        connection.request("POST", "/login", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        elapsed = time.perf_counter() - start
        assert response.status == 200 and answer["user"] == "Obama", answer
        if index:
            wall.append(elapsed)
            decide.append(answer["ms"]["total"] / 1000)
    connection.close()
    return wall, decide


def browser_runs(url: str, video: Path, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    assert executable is not None
    samples = []
    with sync_playwright() as driver:
        for _ in range(runs):
            browser = launch(driver, executable, video)
            try:
                page = browser.new_page()
                start = time.perf_counter()
                page.goto(f"{url}/login")
                page.wait_for_url("**/profile", timeout=30_000)
                page.wait_for_function(PROFILE_LOADED, timeout=15_000)
                samples.append(time.perf_counter() - start)
            finally:
                browser.close()
    return samples


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=faces_root())
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--browser-runs", type=int, default=5)
    args = parser.parse_args()
    if args.faces is None:
        sys.exit("sample photos not found: --faces ../shared/faces")
    probe = args.faces / "probes" / "Obama.jpg"

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = root / "state"
        print("writing a synced state (embedded defaults) ...", flush=True)
        write_state(
            Settings(state_dir=state), args.faces / "images", encode_tree(args.faces / "images"), ENROLLED
        )
        urls = frame_urls(probe, 5)
        files = []
        for index, url in enumerate(urls):
            files.append(root / f"frame{index}.jpg")
            files[-1].write_bytes(base64.b64decode(url.split(",", 1)[1]))
        print(f"frames: 5 x 640x480 JPEG of {probe.name}, {files[0].stat().st_size // 1024} KB each")

        reference = reference_serve(state / "bundle", files, args.requests, root / "cache")
        env = clean_env(root / "home", FACELOGIN_STATE_DIR=str(state), FACELOGIN_WEB_ATTEMPTS="100000")
        server = start_web(env, root)
        try:
            wall, decide = web_requests(server.port, urls, args.requests)
            seconds = (
                browser_runs(server.url, write_y4m(probe, root / "probe.y4m"), args.browser_runs)
                if (chromium_path() and args.browser_runs)
                else []
            )
        finally:
            server.stop()

    print(f"\nmedian of {args.requests} requests, 5 frames each (n=5, k=3: 3 decided, all agree):")
    print(f"  (a) facelogin login --serve, per request     {ms(reference)}")
    print(f"  (b) POST /login to facelogin web, per request {ms(wall)}   (decision inside: {ms(decide)})")
    print(f"  ratio (b)/(a): {statistics.median(wall) / statistics.median(reference):.2f}")
    if seconds:
        runs = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"\n(c) Chromium, fake camera: page load to profile with its image, median of {len(seconds)}: "
              f"{statistics.median(seconds):.2f} s ({runs})")  # fmt: skip
    else:
        print("\n(c) skipped: no Chromium (apt-get install -y chromium)")


if __name__ == "__main__":
    main()
