"""A real browser with a fake camera, and `facelogin web` run as a user runs it, for the web tests.

Debian's Chromium (/usr/bin/chromium) driven by Playwright; the camera is a y4m video made from
a photo (Chromium loops it). Nothing is downloaded at test time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from facelogin.adapters.embedded import free_port

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
]


def chromium_path() -> str | None:
    """Debian's Chromium, or any `chromium` on the PATH."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def write_y4m(photo: Path, out: Path, size: tuple[int, int] = (640, 480), frames: int = 10) -> Path:
    """A y4m video of `photo` letterboxed to `size`: the text header, then each frame's Y, U, V planes."""
    width, height = size
    image = Image.open(photo).convert("RGB")
    image.thumbnail(size)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    y, cb, cr = canvas.convert("YCbCr").split()
    half = (width // 2, height // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with open(out, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            fh.write(b"FRAME\n" + planes)
    return out


def write_clip_y4m(frames: list[Path], out: Path, size: tuple[int, int] = (640, 480), fps: int = 10) -> Path:
    """A y4m video of a recorded clip's frames, letterboxed to `size` (Chromium loops it)."""
    width, height = size
    half = (width // 2, height // 2)
    with open(out, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for path in frames:
            image = Image.open(path).convert("RGB")
            image.thumbnail(size)
            canvas = Image.new("RGB", size, (0, 0, 0))
            canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
            y, cb, cr = canvas.convert("YCbCr").split()
            fh.write(b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes())
    return out


def launch(playwright: Any, executable: str, video: Path | None, allow_camera: bool = True) -> Any:
    """Chromium with a fake camera showing `video`; `allow_camera=False` answers the camera prompt "deny"."""
    args = list(CHROMIUM_FLAGS)
    if video is not None:
        args.append(f"--use-file-for-fake-video-capture={video}")
    if allow_camera:
        args.append("--use-fake-ui-for-media-stream")
    else:
        args.append("--deny-permission-prompts")
    return playwright.chromium.launch(executable_path=executable, args=args)


@dataclass
class WebServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM, as systemd stops it, or SIGINT, as Ctrl-C does."""
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_web(
    env: dict[str, str], log_dir: Path, timeout: float = 60.0, forced_actions: str | None = None
) -> WebServer:
    """`facelogin web` on a free loopback port with `env`; returns once /healthz answers.

    `forced_actions` (e.g. "blink") serves the same app through tests/web/forced_web.py instead, whose
    challenges always ask for those actions: a recorded clip can then answer them. Production has
    no way to do this: only a Python caller of `create_app` can replace the random draw.
    """
    port = free_port()
    exe = Path(sys.executable).with_name("facelogin")
    log = log_dir / f"web-{port}.log"
    if forced_actions is None:
        command = [str(exe), "web", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "tests.web.forced_web", str(port), forced_actions]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    server = WebServer(process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"facelogin web exited with {process.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2):
                return server
        except urllib.error.HTTPError:
            return server  # it answers (503: something to show on the pages)
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"facelogin web did not answer within {timeout:.0f} s:\n{server.output()}")


def clean_env(home: Path, **settings: str) -> dict[str, str]:
    """A user's environment for `facelogin web`: none of the developer's FACELOGIN_/AWS_/PREFECT_ settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("FACELOGIN_", "AWS_", "PREFECT_"))}
    return keep | {"HOME": str(home)} | settings
