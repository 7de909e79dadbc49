"""The Pi install as the README writes it: a wheel built from the checkout, installed into a fresh venv
with only the Pi extras, logging in against a bundle published to S3 (moto) from the sample photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facelogin.adapters.stores.s3 import S3Store, s3_client
from facelogin.bundle import build_bundle, publish_bundle
from tests.conftest import AWS_ENV
from tests.photos import per_user
from tests.servers import MotoServer
from tests.test_layout import ROOT, _uv

pytestmark = pytest.mark.slow


def run(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def test_the_wheel_with_the_pi_extras_logs_in_against_an_s3_bundle(
    faces: Path, moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed: `pip install uv` builds the wheel")
    built = subprocess.run([*uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist")], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("facelogin-*.whl")

    # The bundle, published where the sync publishes it, with the sync's own publisher.
    for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": moto.url}.items():
        monkeypatch.setenv(key, value)
    encodings = per_user(faces / "images")
    data, manifest = build_bundle(encodings, {}, "2026-01-01T00:00:00+00:00", {"detector": "hog"})
    publish_bundle(S3Store(s3_client(), bucket), "encodings", data, manifest)

    venv = tmp_path / "pi"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACELOGIN_", "PREFECT_"))}
    env |= {"HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    installed = run(*pip, f"{wheel}[pi]", env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]

    login = [venv / "bin" / "facelogin", "login", "--no-liveness", "--bundle", f"s3://{bucket}/encodings/latest",
             "--cache-dir", tmp_path / "cache"]  # fmt: skip
    probe = faces / "probes" / "Obama.jpg"
    without_s3 = run(*login, "--image", probe, env=env, timeout=120)
    assert without_s3.returncode == 2, without_s3.stdout + without_s3.stderr
    assert "boto3" in without_s3.stderr and "-m pip install boto3" in without_s3.stderr
    assert "Traceback" not in without_s3.stderr

    installed = run(*pip, f"{wheel}[pi,s3]", env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    accepted = run(*login, "--image", probe, env=env, timeout=120)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert json.loads(accepted.stdout)["user"] == "Obama"
    stranger = run(*login, "--image", faces / "edge" / "obama_rgba_32bit.png", env=env, timeout=120)
    assert stranger.returncode in {0, 1}  # decided either way, never an error
    sky = tmp_path / "sky.jpg"
    from PIL import Image

    Image.new("RGB", (320, 240), (90, 140, 200)).save(sky)
    nobody = run(*login, "--image", sky, env=env, timeout=120)
    assert nobody.returncode == 1 and json.loads(nobody.stdout)["decision"] == "rejected"

    # Nothing of the sync came along, and pip sees no missing requirement.
    check = run(venv / "bin" / "python", "-m", "pip", "check", env=env)
    assert check.returncode == 0, check.stdout
    absent = run(venv / "bin" / "python", "-c",
                 "import importlib.util as u; print([m for m in ('prefect', 'pymongo', 'pydantic_settings', "
                 "'nx_27017', 'face_recognition', 'cv2') if u.find_spec(m)])", env=env)  # fmt: skip
    assert absent.stdout.strip() == "[]", absent.stdout + absent.stderr
    version = run(venv / "bin" / "facelogin", "--version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("facelogin ")
